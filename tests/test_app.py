from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import discord

from bot.app import REQUIRED_PERMISSIONS, VoiceBot, bot_intents, extension_names, invite_url
from bot.config import load_config
from bot.persona.library import PersonaLibrary
from bot.store.sqlite import SqliteStore


def test_intents_are_minimal() -> None:
    intents = bot_intents()
    enabled = {name for name, value in intents if value}
    assert enabled == {"guilds", "voice_states"}
    assert not intents.message_content


def test_invite_url_asks_exactly_for_the_needed_permissions() -> None:
    query = parse_qs(urlparse(invite_url(1234)).query)
    assert query["client_id"] == ["1234"]
    assert set(query["scope"][0].split()) == {"bot", "applications.commands"}
    granted = discord.Permissions(int(query["permissions"][0]))
    assert granted == REQUIRED_PERMISSIONS
    # View Channel, Send Messages, Embed Links, Connect, Speak, Use Application Commands: Discord's bit numbers.
    assert granted.value == (1 << 10) | (1 << 11) | (1 << 14) | (1 << 20) | (1 << 21) | (1 << 31)


def test_extension_names_are_cog_modules() -> None:
    assert all(name.startswith("cogs.") and not name.startswith("cogs._") for name in extension_names())


async def test_a_shard_process_tells_discord_which_shard_it_is(tmp_path: Path) -> None:
    config = load_config(
        {"DISCORD_TOKEN": "t-abcdef", "OPENAI_API_KEY": "sk-abcdef", "SHARD_ID": "1", "SHARD_COUNT": "2"},
        env_file=None,
    )

    async def no_sessions(*_args: Any) -> Any:
        raise AssertionError("no session is started here")

    store = await SqliteStore.in_data_dir(tmp_path)
    bot = VoiceBot(config, store=store, personas=PersonaLibrary(tmp_path), session_factory=no_sessions)
    assert (bot.shard_id, bot.shard_count) == (1, 2)
    await store.close()
