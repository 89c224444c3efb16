"""What ``/voice-admin forget`` and ``/voice forget-me`` delete, and what they keep: members' opt-outs, so nobody who
opted out is heard again by accident. Through the real cogs, with the confirmation button pressed as Discord would."""

from __future__ import annotations

from typing import Any

from bot import texts
from bot.app import VoiceBot
from bot.store import GuildSettings, Privacy
from tests.cogs.conftest import interaction
from tests.discord_world import FakeInteraction, World
from tests.store.doubles import FailingWrites

ALICE, BOB, CAROL = 5, 6, 7
DAY = "2026-11-24"


async def press(view: Any, button: Any, fake: FakeInteraction) -> None:
    """A button press as discord.py dispatches it: the view's check first, then the button's callback."""
    if await view.interaction_check(fake.as_interaction()):
        await button.callback(fake.as_interaction())


async def stored(bot: VoiceBot, guild_id: int) -> None:
    await bot.store.update(guild_id, {"voice": "ash", "transcripts": True})
    await bot.store.add_usage(guild_id, DAY, seconds=60)
    await bot.store.add_user_usage(guild_id, DAY, ALICE, 30.0)
    await bot.store.add_user_usage(guild_id, DAY, CAROL, 20.0)
    await bot.store.set_privacy(guild_id, CAROL, no_transcript=True, no_listen=True)


async def test_forget_asks_first_then_deletes_everything_but_opt_outs(bot: VoiceBot, world: World) -> None:
    guild_id = world.guild.id
    await stored(bot, guild_id)
    admin = bot.get_cog("VoiceAdminCog")
    asked = interaction(bot, world, BOB)
    await admin.forget.callback(admin, asked.as_interaction())  # type: ignore[union-attr]
    view = asked.last.view
    assert asked.last.content == texts.FORGET_CONFIRM and asked.last.ephemeral and view is not None
    assert (await bot.store.get(guild_id)).voice == "ash"  # nothing deleted before the answer

    stranger = interaction(bot, world, ALICE)
    await press(view, view.yes, stranger)  # type: ignore[attr-defined]
    assert stranger.last.content == texts.CONFIRM_NOT_YOURS and stranger.last.ephemeral
    assert (await bot.store.get(guild_id)).voice == "ash"

    click = interaction(bot, world, BOB)
    await press(view, view.yes, click)  # type: ignore[attr-defined]
    assert click.last.content == texts.forgotten(4, 1) and click.last.view is None
    assert await bot.store.get(guild_id) == GuildSettings()
    assert await bot.store.top_talkers(guild_id, "2026-11-01") == []
    assert await bot.store.privacy(guild_id, CAROL) == Privacy(no_transcript=True, no_listen=True)  # still unheard


async def test_forget_can_be_cancelled(bot: VoiceBot, world: World) -> None:
    await stored(bot, world.guild.id)
    admin = bot.get_cog("VoiceAdminCog")
    asked = interaction(bot, world, BOB)
    await admin.forget.callback(admin, asked.as_interaction())  # type: ignore[union-attr]
    click = interaction(bot, world, BOB)
    await press(asked.last.view, asked.last.view.no, click)  # type: ignore[union-attr]
    assert click.last.content == texts.FORGET_CANCELLED
    assert (await bot.store.get(world.guild.id)).voice == "ash"


async def test_an_unanswered_question_expires_and_deletes_nothing(bot: VoiceBot, world: World) -> None:
    await stored(bot, world.guild.id)
    admin = bot.get_cog("VoiceAdminCog")
    asked = interaction(bot, world, BOB)
    await admin.forget.callback(admin, asked.as_interaction())  # type: ignore[union-attr]
    view = asked.last.view
    assert view is not None and view.timeout == 60.0
    await view.on_timeout()  # what discord.py calls when the minute is up
    assert asked.last.content == texts.CONFIRM_EXPIRED and asked.last.view is None and asked.last.ephemeral
    assert (await bot.store.get(world.guild.id)).voice == "ash"


async def test_a_member_deletes_their_own_data_and_keeps_their_opt_out(bot: VoiceBot, world: World) -> None:
    guild_id = world.guild.id
    await stored(bot, guild_id)
    voice = bot.get_cog("VoiceCog")
    carol = interaction(bot, world, CAROL)
    await voice.forget_me.callback(voice, carol.as_interaction())  # type: ignore[union-attr]
    assert carol.last.content == texts.forgot_you(1, kept_opt_out=True) and carol.last.ephemeral
    assert (await bot.store.privacy(guild_id, CAROL)).no_listen
    assert [t.user_id for t in await bot.store.top_talkers(guild_id, "2026-11-01")] == [ALICE]  # only carol's went
    alice = interaction(bot, world, ALICE)
    await voice.forget_me.callback(voice, alice.as_interaction())  # type: ignore[union-attr]
    assert alice.last.content == texts.forgot_you(1, kept_opt_out=False)
    assert await bot.store.top_talkers(guild_id, "2026-11-01") == []
    assert (await bot.store.get(guild_id)).voice == "ash"  # the server's settings are not theirs to delete


async def test_a_confirmed_forget_the_store_cannot_do_says_so_and_deletes_nothing(bot: VoiceBot, world: World) -> None:
    await stored(bot, world.guild.id)
    failing = FailingWrites(bot.store)
    bot.store = failing.as_store()
    admin = bot.get_cog("VoiceAdminCog")
    asked = interaction(bot, world, BOB)
    await admin.forget.callback(admin, asked.as_interaction())  # type: ignore[union-attr]
    click = interaction(bot, world, BOB)
    await press(asked.last.view, asked.last.view.yes, click)  # type: ignore[union-attr]
    assert click.last.content == texts.STORE_UNAVAILABLE and click.last.view is None  # not "interaction failed"
    assert failing.refused == ["deleting a server's data"]
    bot.store = failing.inner
    assert (await bot.store.get(world.guild.id)).voice == "ash"
