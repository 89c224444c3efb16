"""Building a session when the store cannot answer: one clear sentence, and nothing opened."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import discord
import pytest

from bot import texts
from bot.config import load_config
from bot.persona.library import PersonaLibrary
from bot.session.registry import JoinError
from bot.session.wiring import GuildSessionFactory
from bot.store.sqlite import SqliteStore


async def test_a_store_that_cannot_answer_refuses_the_join_before_any_connection(tmp_path: Path) -> None:
    store = await SqliteStore.in_data_dir(tmp_path)
    await store.close()  # every call now fails with StoreUnavailable, as a locked or unreachable store does
    config = load_config({"DISCORD_TOKEN": "token-abcdef", "OPENAI_API_KEY": "sk-abcdef"}, env_file=None)
    factory = GuildSessionFactory(config, store, PersonaLibrary(tmp_path / "personas"))
    # A channel without connect(): the factory must not get as far as the voice connection.
    channel = cast(discord.VoiceChannel, SimpleNamespace(id=5, guild=SimpleNamespace(id=1, voice_client=None)))

    def on_end(*_args: Any) -> None:
        raise AssertionError("no session was started")

    with pytest.raises(JoinError) as refused:
        await factory(channel, None, on_end)
    assert str(refused.value) == texts.STORE_UNAVAILABLE
