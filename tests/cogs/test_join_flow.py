"""What ``/voice join`` and ``/voice-admin settings`` refuse before anything is opened, through the real cogs in the
scripted guild: a spent budget, a stage the bot could not speak on, a full channel, a transcript channel it cannot
post in, a budget above the operator's, and too many commands in a row."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, cast

import pytest
from discord import app_commands

from bot import texts
from bot.app import VoiceBot
from bot.store import GuildSettings, SettingsStore, StoreUnavailable
from cogs._base import UserFacingError, report_error
from cogs.voice import seconds_to_utc_midnight
from tests.cogs.conftest import add_cogs, interaction, make_bot
from tests.discord_world import ANNOUNCEMENTS, BOOTH, TOWN_HALL, World, make_world

ALICE, BOB, DAVE = 5, 6, 8


def cog(bot: VoiceBot, name: str) -> Any:
    found = bot.get_cog(name)
    assert found is not None
    return found


async def join(bot: VoiceBot, world: World, user_id: int) -> None:
    voice = cog(bot, "VoiceCog")
    await voice.join.callback(voice, interaction(bot, world, user_id).as_interaction())


async def test_a_spent_daily_budget_is_refused_with_when_it_resets(bot: VoiceBot, world: World) -> None:
    await bot.store.update(world.guild.id, {"daily_budget_min": 10})
    await bot.store.add_usage(world.guild.id, dt.datetime.now(dt.UTC).date().isoformat(), seconds=600)
    with pytest.raises(
        UserFacingError, match=r"used today's 10 voice minutes.*reset at 00:00 UTC \(in \d+ h \d+ min\)"
    ):
        await join(bot, world, ALICE)
    assert len(bot.sessions) == 0


class SlowReads:
    """The bot's real store, whose reads wait for :attr:`release` (a database that stopped answering)."""

    def __init__(self, inner: SettingsStore) -> None:
        self.inner = inner
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get(self, guild_id: int) -> GuildSettings:
        await self.release.wait()
        return await self.inner.get(guild_id)


async def test_a_store_that_does_not_answer_refuses_the_join_before_discords_deadline(
    bot: VoiceBot, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cogs._base.BEFORE_ANSWER_STORE_WAIT_S", 0.05)
    slow = SlowReads(bot.store)
    bot.store = cast(SettingsStore, slow)
    voice = cog(bot, "VoiceCog")
    fake = interaction(bot, world, ALICE)
    with pytest.raises(StoreUnavailable, match=r"did not answer within 0\.05 s") as refused:
        await voice.join.callback(voice, fake.as_interaction())
    assert not fake.response.is_done() and len(bot.sessions) == 0  # nothing acknowledged, nothing opened
    command = voice.join
    await report_error(fake.as_interaction(), app_commands.CommandInvokeError(command, refused.value))
    assert (fake.last.content, fake.last.ephemeral) == (texts.STORE_UNAVAILABLE, True)
    bot.store = slow.inner


def test_the_budget_resets_at_utc_midnight() -> None:
    assert seconds_to_utc_midnight(dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)) == 1800
    assert seconds_to_utc_midnight(dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.UTC)) == 86400
    assert texts.budget_spent(30, 1800).endswith("(in 30 min).")


async def test_a_stage_the_bot_could_not_speak_on_is_refused(bot: VoiceBot, world: World) -> None:
    world.move(ALICE, TOWN_HALL)  # neither Mute Members nor Request to Speak for the bot there
    with pytest.raises(UserFacingError) as refused:
        await join(bot, world, ALICE)
    assert str(refused.value) == texts.stage_cannot_speak(f"<#{TOWN_HALL}>")


async def test_a_full_channel_says_so_and_what_would_let_the_bot_in(bot: VoiceBot, world: World) -> None:
    with pytest.raises(UserFacingError) as refused:
        await join(bot, world, DAVE)  # the Booth has room for one: dave
    assert str(refused.value) == texts.channel_full(f"<#{BOOTH}>", 1, 1)
    assert "Move Members" in str(refused.value)


async def test_a_transcript_channel_the_bot_cannot_post_in_is_refused(bot: VoiceBot, world: World) -> None:
    admin = cog(bot, "VoiceAdminCog")
    fake = interaction(bot, world, BOB)
    with pytest.raises(UserFacingError) as refused:
        await admin.settings.callback(
            admin, fake.as_interaction(), transcripts=True, transcript_channel=world.text_channel(ANNOUNCEMENTS)
        )
    # Discord's rule, computed by discord.py: who may not send messages may not embed links either
    assert str(refused.value) == texts.transcript_channel_unusable(
        f"<#{ANNOUNCEMENTS}>", ["Send Messages", "Embed Links"]
    )
    assert (await bot.store.get(world.guild.id)).transcripts is False  # nothing saved


async def test_a_server_budget_stays_within_the_operators(tmp_path: Path) -> None:
    async with await make_bot(tmp_path, DAILY_BUDGET_MIN="30") as bot:
        await add_cogs(bot)
        await budget_within_the_operators(bot, make_world(bot))


async def budget_within_the_operators(bot: VoiceBot, world: World) -> None:
    admin = cog(bot, "VoiceAdminCog")
    for too_much in (60.0, 0.0):  # 0 would mean "no limit"
        with pytest.raises(UserFacingError, match="at most 30 minutes"):
            await admin.settings.callback(
                admin, interaction(bot, world, BOB).as_interaction(), daily_budget_min=too_much
            )
    saved = interaction(bot, world, BOB)
    await admin.settings.callback(admin, saved.as_interaction(), daily_budget_min=20.0)
    assert (await bot.store.get(world.guild.id)).daily_budget_min == 20.0
    assert saved.last.embed is not None
    assert {f.name: f.value for f in saved.last.embed.fields}["daily_budget_min"] == "20 min"
    reset = interaction(bot, world, BOB)
    await admin.settings.callback(admin, reset.as_interaction(), reset="daily_budget_min")
    assert (await bot.store.get(world.guild.id)).daily_budget_min is None
    assert reset.last.embed is not None
    assert {f.name: f.value for f in reset.last.embed.fields}["daily_budget_min"] == "default (30 min)"


async def test_join_reset_and_say_have_per_user_cooldowns_with_the_wait_in_the_reply(
    bot: VoiceBot, world: World
) -> None:
    voice = cog(bot, "VoiceCog")
    for command, uses in ((voice.join, 2), (voice.reset, 1), (voice.say, 3)):
        for _ in range(uses):
            assert await command._check_can_run(interaction(bot, world, ALICE).as_interaction())
        tripped = interaction(bot, world, ALICE)
        tripped.command = command
        with pytest.raises(app_commands.CommandOnCooldown) as cooling:
            await command._check_can_run(tripped.as_interaction())
        await report_error(tripped.as_interaction(), cooling.value)
        assert tripped.last.content is not None and tripped.last.ephemeral
        assert tripped.last.content.startswith(f"Slow down a little: you can use `/voice {command.name}` again in ")
        assert await command._check_can_run(interaction(bot, world, 7).as_interaction())  # carol is not held up
