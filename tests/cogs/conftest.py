"""The bot with every cog loaded, in the scripted guild of :mod:`tests.discord_world`, without voice sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import VoiceBot
from bot.config import load_config
from bot.persona.library import PersonaLibrary
from bot.store.sqlite import SqliteStore
from cogs.persona import PersonaCog
from cogs.persona_admin import PersonaAdminCog
from cogs.voice import VoiceCog
from cogs.voice_admin import VoiceAdminCog
from tests.discord_world import FakeInteraction, World, make_world

PIRATE = """
name = "Captain Rowan"
age = 41
style = "Talks like an old sailor."
[facts]
favorite_food = "fish stew"
"""


async def no_sessions(*_args: Any) -> Any:
    raise AssertionError("these tests open no voice session")


async def make_bot(tmp_path: Path, **env: str) -> VoiceBot:
    """The bot on a real SQLite store in ``tmp_path`` (closing the bot closes the store)."""
    config = load_config(
        {"DISCORD_TOKEN": "token-abcdef", "OPENAI_API_KEY": "sk-abcdef", "MANAGER_ROLE": "DJ", **env}, env_file=None
    )
    return VoiceBot(
        config,
        store=await SqliteStore.in_data_dir(tmp_path),
        personas=PersonaLibrary(tmp_path / "personas"),
        session_factory=no_sessions,
    )


async def add_cogs(bot: VoiceBot) -> None:
    for cog in (VoiceCog(bot), VoiceAdminCog(bot), PersonaCog(bot), PersonaAdminCog(bot)):
        await bot.add_cog(cog)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[VoiceBot]:
    (tmp_path / "personas").mkdir()
    (tmp_path / "personas" / "pirate.toml").write_text(PIRATE, encoding="utf-8")
    (tmp_path / "personas" / "broken.toml").write_text("name = \n", encoding="utf-8")
    bot = await make_bot(tmp_path)
    async with bot:  # discord.py's own set-up (its loop, to dispatch gateway events), without logging in
        await add_cogs(bot)
        yield bot


@pytest.fixture
def world(bot: VoiceBot) -> World:
    return make_world(bot)


def interaction(bot: VoiceBot, world: World, user_id: int) -> FakeInteraction:
    return FakeInteraction(client=bot, guild=world.guild, user=world.member(user_id), channel=world.text_channel())
