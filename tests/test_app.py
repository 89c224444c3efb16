from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import discord

from bot.app import REQUIRED_PERMISSIONS, VoiceBot, bot_intents, extension_names, invite_url
from bot.config import load_config
from bot.persona.library import PersonaLibrary
from bot.store import SettingsStore
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


async def make_bot(tmp_path: Path, **env: str) -> tuple[VoiceBot, SettingsStore]:
    config = load_config({"DISCORD_TOKEN": "t-abcdef", "OPENAI_API_KEY": "sk-abcdef", **env}, env_file=None)

    async def no_sessions(*_args: Any) -> Any:
        raise AssertionError("no session is started here")

    store = await SqliteStore.in_data_dir(tmp_path)
    return VoiceBot(config, store=store, personas=PersonaLibrary(tmp_path), session_factory=no_sessions), store


async def test_a_process_runs_the_shards_it_is_given_and_only_shard_0_syncs_commands(tmp_path: Path) -> None:
    bot, store = await make_bot(tmp_path, SHARD_IDS="2-3", SHARD_COUNT="4")
    assert (bot.shard_ids, bot.shard_count, bot.syncs_commands) == ([2, 3], 4, False)
    await store.close()
    legacy, store = await make_bot(tmp_path, SHARD_ID="1", SHARD_COUNT="2")
    assert (legacy.shard_ids, legacy.shard_count, legacy.syncs_commands) == ([1], 2, False)
    await store.close()
    first, store = await make_bot(tmp_path, SHARD_IDS="0-1", SHARD_COUNT="4")
    await store.close()
    alone, store = await make_bot(tmp_path)
    await store.close()
    assert first.syncs_commands and alone.syncs_commands and alone.shard_ids is None
    report = bot.health()  # not logged in: not ready, and says which shards it is meant to run
    assert not report.ready and report.shard_ids == (2, 3) and report.sessions == 0
