"""The slash commands that need no voice connection: persona, settings, data deletion, permissions, errors.

Shared with the other cog tests: the ``bot`` and ``world`` fixtures (:mod:`tests.cogs.conftest`)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import discord
import pytest
from discord import app_commands

from bot import texts
from bot.app import VoiceBot
from bot.store import GuildSettings
from cogs._base import UserFacingError, manager_only, report_error
from tests.cogs.conftest import interaction
from tests.discord_world import FakeInteraction, World
from tests.store.doubles import FailingWrites


def cog(bot: VoiceBot, name: str) -> Any:
    found = bot.get_cog(name)
    assert found is not None
    return found


async def test_persona_show_describes_the_default_persona(bot: VoiceBot, world: World) -> None:
    fake = interaction(bot, world, 5)
    await cog(bot, "PersonaCog").show.callback(cog(bot, "PersonaCog"), fake.as_interaction())
    embed = fake.last.embed
    assert fake.last.ephemeral and embed is not None
    assert embed.title == bot.personas.load(None).name
    assert any(field.name == "Age" for field in embed.fields)


async def test_persona_set_stores_a_known_persona_and_refuses_others(bot: VoiceBot, world: World) -> None:
    persona_cog = cog(bot, "PersonaAdminCog")
    fake = interaction(bot, world, 6)
    await persona_cog.set_.callback(persona_cog, fake.as_interaction(), "pirate")
    assert fake.last.content == texts.persona_set("Captain Rowan")
    assert (await bot.store.get(world.guild.id)).persona == "pirate"
    with pytest.raises(UserFacingError, match="no persona called `ghost`"):
        await persona_cog.set_.callback(persona_cog, interaction(bot, world, 6).as_interaction(), "ghost")
    with pytest.raises(UserFacingError, match=r"could not be loaded: .*line 1"):
        await persona_cog.set_.callback(persona_cog, interaction(bot, world, 6).as_interaction(), "broken")
    assert (await bot.store.get(world.guild.id)).persona == "pirate"  # nothing lost


async def test_persona_autocomplete_lists_matching_names(bot: VoiceBot, world: World) -> None:
    persona_cog = cog(bot, "PersonaAdminCog")
    choices = await persona_cog._persona_names(interaction(bot, world, 6).as_interaction(), "PI")
    assert [c.value for c in choices] == ["pirate"]
    everything = await persona_cog._persona_names(interaction(bot, world, 6).as_interaction(), "")
    assert [c.value for c in everything] == ["default", "broken", "pirate"]


async def test_settings_and_persona_commands_need_a_manager(bot: VoiceBot, world: World) -> None:
    admin_cog, persona_cog = cog(bot, "VoiceAdminCog"), cog(bot, "PersonaAdminCog")
    for command in (admin_cog.settings, admin_cog.export, admin_cog.forget, persona_cog.set_):
        assert manager_only in command.checks
    with pytest.raises(UserFacingError, match="Manage Server"):
        await manager_only(interaction(bot, world, 5).as_interaction())  # alice: no permission, no role
    assert await manager_only(interaction(bot, world, 6).as_interaction())  # bob: Manage Server
    assert await manager_only(interaction(bot, world, 7).as_interaction())  # carol: the configured DJ role


async def test_settings_shows_saves_and_survive_in_the_store(bot: VoiceBot, world: World) -> None:
    admin_cog = cog(bot, "VoiceAdminCog")
    shown = interaction(bot, world, 6)
    await admin_cog.settings.callback(admin_cog, shown.as_interaction())
    assert shown.last.content == texts.SETTINGS_CURRENT and shown.last.embed is not None
    fields = {f.name: f.value for f in shown.last.embed.fields}
    assert fields["transcript_channel_id"] == "the voice channel's chat" and fields["persona"] == "default"
    changed = interaction(bot, world, 6)
    await admin_cog.settings.callback(
        admin_cog,
        changed.as_interaction(),
        voice="cedar",
        interruptions=False,
        silence_ms=800,
        transcript_channel=world.text_channel(),
    )
    assert changed.last.content is not None and changed.last.content.startswith(texts.settings_saved(True))
    assert changed.last.embed is not None
    fields = {f.name: f.value for f in changed.last.embed.fields}
    assert fields["transcript_channel_id"] == "<#12>" and fields["interruptions"] == "off"  # a mention, not an id
    saved = await bot.store.get(world.guild.id)
    assert (saved.voice, saved.interruptions, saved.silence_ms, saved.transcript_channel_id) == (
        "cedar",
        False,
        800,
        12,
    )
    back = interaction(bot, world, 6)
    await admin_cog.settings.callback(admin_cog, back.as_interaction(), reset="voice")
    assert back.last.content == f"{texts.settings_saved(voice_changed=True)} {texts.setting_reset('voice')}"
    reset = await bot.store.get(world.guild.id)
    assert reset.voice is None and reset.silence_ms == 800
    semantic = interaction(bot, world, 6)
    await admin_cog.settings.callback(
        admin_cog, semantic.as_interaction(), turn_detection="semantic_vad", eagerness="low"
    )
    assert semantic.last.content == texts.settings_saved(False) and semantic.last.embed is not None
    fields = {f.name: f.value for f in semantic.last.embed.fields}
    assert (fields["turn_detection"], fields["eagerness"]) == ("semantic_vad", "low")
    stored = await bot.store.get(world.guild.id)
    assert (stored.turn_detection, stored.eagerness) == ("semantic_vad", "low")


async def test_join_refuses_callers_outside_voice_and_channels_the_bot_cannot_use(bot: VoiceBot, world: World) -> None:
    voice_cog = cog(bot, "VoiceCog")
    with pytest.raises(UserFacingError, match="Join a voice channel first"):
        await voice_cog.join.callback(voice_cog, interaction(bot, world, 6).as_interaction())  # bob is in no channel
    with pytest.raises(UserFacingError, match="You need to be in my voice channel"):
        await voice_cog.join.callback(voice_cog, interaction(bot, world, 5).as_interaction(), world.voice_channel(11))
    # move alice into the locked channel: the bot lacks Connect there, and so (Discord's rule) Speak too
    world.guild._update_voice_state(
        {
            "user_id": "5",
            "channel_id": "11",
            "session_id": "s",
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": False,
            "self_video": False,
            "suppress": False,
        },
        11,
    )
    with pytest.raises(UserFacingError, match=r"I need the \*\*Connect\*\*, \*\*Speak\*\* permission in <#11>"):
        await voice_cog.join.callback(voice_cog, interaction(bot, world, 5).as_interaction())


async def test_commands_need_a_session_where_one_is_required(bot: VoiceBot, world: World) -> None:
    voice_cog = cog(bot, "VoiceCog")
    for command, args in (
        (voice_cog.leave, ()),
        (voice_cog.reset, ()),
        (voice_cog.say, ("hi",)),
        (voice_cog.status, ()),
    ):
        with pytest.raises(UserFacingError, match="I'm not in a voice channel here"):
            await command.callback(voice_cog, interaction(bot, world, 5).as_interaction(), *args)


async def test_errors_reach_the_user_as_one_short_ephemeral_line(
    bot: VoiceBot, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    fake = interaction(bot, world, 5)
    await report_error(fake.as_interaction(), UserFacingError("Nope."))
    assert (fake.last.content, fake.last.ephemeral) == ("Nope.", True)
    crashed = interaction(bot, world, 5)
    await crashed.response.defer(ephemeral=True)
    original = RuntimeError("driver exploded with key sk-abcdef")
    with caplog.at_level(logging.ERROR):
        await report_error(
            crashed.as_interaction(), app_commands.CommandInvokeError(cog(bot, "VoiceCog").say, original)
        )
    assert crashed.last.content == texts.GENERIC_ERROR  # the user sees no internals (and no key)
    assert "command ? failed" in caplog.text or "failed" in caplog.text
    in_dm = FakeInteraction(client=bot, guild=None, user=world.member(5))
    await report_error(in_dm.as_interaction(), app_commands.NoPrivateMessage())
    assert in_dm.last.content == texts.NOT_IN_GUILD


async def test_a_store_that_cannot_write_gets_one_clear_reply(
    bot: VoiceBot, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    failing = FailingWrites(bot.store)
    bot.store = failing.as_store()
    voice_cog, admin_cog = cog(bot, "VoiceCog"), cog(bot, "VoiceAdminCog")
    for owner, command, kwargs in (
        (admin_cog, admin_cog.settings, {"voice": "cedar"}),
        (voice_cog, voice_cog.privacy, {"listening": False}),
    ):
        fake = interaction(bot, world, 6)
        with pytest.raises(app_commands.AppCommandError) as raised:
            try:
                await command.callback(owner, fake.as_interaction(), **kwargs)
            except Exception as error:  # as discord.py wraps what a command raises
                raise app_commands.CommandInvokeError(command, error) from error
        await report_error(fake.as_interaction(), raised.value)
        assert (fake.last.content, fake.last.ephemeral) == (texts.STORE_UNAVAILABLE, True)
    assert failing.refused == ["saving settings", "saving privacy choices"]
    assert "did not answer" in caplog.text  # logged for the operator, not shown to the user
    bot.store = failing.inner
    assert await bot.store.get(world.guild.id) == GuildSettings()


def test_invite_permissions_cover_what_join_checks() -> None:
    from bot.app import REQUIRED_PERMISSIONS

    assert discord.Permissions(view_channel=True, connect=True, speak=True) <= REQUIRED_PERMISSIONS


async def test_usage_shows_today_the_month_and_top_talkers_without_names_stored(bot: VoiceBot, world: World) -> None:
    guild_id = world.guild.id
    today = dt.datetime.now(dt.UTC).date()
    await bot.store.add_usage(guild_id, today.isoformat(), seconds=600, cost_usd=0.25)
    await bot.store.add_user_usage(guild_id, today.isoformat(), 5, 240.0)
    await bot.store.add_user_usage(guild_id, today.isoformat(), 7, 60.0)
    await bot.store.update(guild_id, {"daily_budget_min": 30})
    fake = interaction(bot, world, 5)
    await cog(bot, "VoiceCog").usage.callback(cog(bot, "VoiceCog"), fake.as_interaction())
    embed = fake.last.embed
    assert embed is not None and fake.last.ephemeral
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Today"] == "10.0 min of 30 min · $0.250"
    assert fields["Top talkers this month"] == "<@5>: 4.0 min\n<@7>: 1.0 min"


async def test_privacy_choices_are_saved_per_user(bot: VoiceBot, world: World) -> None:
    voice_cog = cog(bot, "VoiceCog")
    fake = interaction(bot, world, 5)
    await voice_cog.privacy.callback(voice_cog, fake.as_interaction(), transcripts=False, listening=False)
    assert fake.last.content == texts.PRIVACY_SAVED.format(transcripts="hidden", listening="off")
    assert (await bot.store.privacy(world.guild.id, 5)).no_listen
    assert not (await bot.store.privacy(world.guild.id, 7)).no_listen
    shown = interaction(bot, world, 5)
    await voice_cog.privacy.callback(voice_cog, shown.as_interaction(), transcripts=True)
    assert shown.last.content == texts.PRIVACY_SAVED.format(transcripts="shown", listening="off")


async def test_push_to_talk_needs_a_session(bot: VoiceBot, world: World) -> None:
    with pytest.raises(UserFacingError, match="not in a voice channel"):
        await cog(bot, "VoiceCog").talk.callback(cog(bot, "VoiceCog"), interaction(bot, world, 5).as_interaction())
