"""How the commands are registered with Discord: the payloads discord.py would send, and where they are synced."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import discord
import pytest
from discord.app_commands import AppCommandContext

from bot.app import SyncTarget, VoiceBot, extension_names, sync_target
from tests.cogs.conftest import make_bot

ROOT = Path(__file__).resolve().parents[2]
#: What users read that names commands: every sentence the bot says, and the README.
WHERE_COMMANDS_ARE_NAMED = {
    p.name: p.read_text(encoding="utf-8") for p in (ROOT / "bot" / "texts" / "__init__.py", ROOT / "README.md")
}
MANAGE_GUILD = discord.Permissions(manage_guild=True).value
MANAGER_ONLY = {"settings", "export", "forget", "set", "create", "edit", "fact", "import", "delete"}


@pytest.fixture
async def loaded(tmp_path: Path) -> Any:
    """The bot with its extensions loaded the way it starts: every module of ``cogs/`` through ``setup()``."""
    bot: VoiceBot = await make_bot(tmp_path)
    for name in extension_names():
        await bot.load_extension(name)
    yield bot
    await bot.store.close()


def payloads(bot: VoiceBot) -> dict[str, dict[str, Any]]:
    return {command.name: command.to_dict(bot.tree) for command in bot.tree.get_commands()}


async def test_every_group_is_guild_only_at_the_group_level(loaded: VoiceBot) -> None:
    sent = payloads(loaded)
    assert set(sent) == {"voice", "voice-admin", "persona", "persona-admin"}
    for name, payload in sent.items():
        assert payload["dm_permission"] is False, name
        assert payload["contexts"] == [AppCommandContext.GUILD], name


async def test_manager_commands_sit_in_groups_discord_hides_from_other_members(loaded: VoiceBot) -> None:
    sent = payloads(loaded)
    assert sent["voice-admin"]["default_member_permissions"] == MANAGE_GUILD
    assert sent["persona-admin"]["default_member_permissions"] == MANAGE_GUILD
    assert sent["voice"]["default_member_permissions"] is None
    assert sent["persona"]["default_member_permissions"] is None
    everyone = {option["name"] for group in ("voice", "persona") for option in sent[group]["options"]}
    managers = {option["name"] for group in ("voice-admin", "persona-admin") for option in sent[group]["options"]}
    assert managers == MANAGER_ONLY and not everyone & MANAGER_ONLY
    assert {"join", "leave", "reset", "say", "status", "talk", "privacy", "forget-me", "usage", "help"} <= everyone


def test_commands_are_synced_once_from_one_place() -> None:
    assert sync_target(dev_guild_id=None, shard_ids=None) is SyncTarget.GLOBAL
    assert sync_target(dev_guild_id=None, shard_ids=(0,)) is SyncTarget.GLOBAL
    assert sync_target(dev_guild_id=None, shard_ids=(0, 1, 2)) is SyncTarget.GLOBAL
    assert sync_target(dev_guild_id=None, shard_ids=(1,)) is SyncTarget.NONE
    assert sync_target(dev_guild_id=42, shard_ids=None) is SyncTarget.DEV_GUILD  # not also globally: no doubles
    assert sync_target(dev_guild_id=42, shard_ids=(2, 3)) is SyncTarget.NONE


@pytest.mark.parametrize(("env", "synced"), [({"DEV_GUILD_ID": "42"}, [42]), ({}, [None])])
async def test_start_up_syncs_to_the_dev_guild_or_globally_never_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], synced: list[int | None]
) -> None:
    bot = await make_bot(tmp_path, **env)
    calls: list[int | None] = []

    async def sync(*, guild: discord.abc.Snowflake | None = None) -> list[Any]:  # Discord's HTTP API stands in
        calls.append(None if guild is None else guild.id)
        return []

    monkeypatch.setattr(bot.tree, "sync", sync)
    await bot.setup_hook()
    assert calls == synced
    if env:  # the dev guild gets every command, copied from the global set
        assert {c.name for c in bot.tree.get_commands(guild=discord.Object(42))} >= {"voice", "voice-admin"}
    await bot.store.close()


async def test_every_command_the_texts_and_readme_mention_exists(loaded: VoiceBot) -> None:
    sent = payloads(loaded)
    known = {(group, option["name"]) for group, payload in sent.items() for option in payload["options"]}
    for name, text in WHERE_COMMANDS_ARE_NAMED.items():
        mentioned = set(re.findall(r"/(voice|voice-admin|persona|persona-admin) ([a-z][a-z-]*)", text))
        assert mentioned and mentioned <= known, (name, mentioned - known)


async def test_join_offers_voice_and_stage_channels(loaded: VoiceBot) -> None:
    [join] = [o for o in payloads(loaded)["voice"]["options"] if o["name"] == "join"]
    [channel] = join["options"]
    assert set(channel["channel_types"]) == {discord.ChannelType.voice.value, discord.ChannelType.stage_voice.value}
