"""The session registry: one session per guild, who may move it, moves that start afresh, failures that stay in
their guild, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import discord
import pytest

from bot import texts
from bot.persona import Persona, default_persona
from bot.session.registry import InUseError, JoinError, JoinOutcome, Session, SessionManager, VoiceTarget
from bot.store import GuildSettings, SettingsStore


@dataclass
class RecordingSession:
    """A session that records what the manager asks of it (the real one is tested with real peers)."""

    guild_id: int
    channel_id: int
    ended: Callable[[Session, str], None]
    calls: list[str] = field(default_factory=list)
    persona: Persona = field(default_factory=default_persona)
    fail_close: bool = False
    humans: int = 0

    def humans_present(self) -> int:
        return self.humans

    async def apply_settings(self, settings: GuildSettings) -> None:
        self.calls.append(f"settings {settings.voice}")

    async def announce(self, notice: str, wait_s: float) -> None:
        self.calls.append(f"announce {notice} within {wait_s:g} s")
        if self.fail_close:
            raise RuntimeError("boom")

    async def close(self, reason: str) -> None:
        self.calls.append(f"close {reason}")
        if self.fail_close:
            raise RuntimeError("boom")

    async def reset(self, persona: Persona | None = None) -> None:
        self.calls.append("reset")

    async def say(self, text: str) -> None:
        self.calls.append(f"say {text}")

    async def status_embed(self, store: SettingsStore) -> discord.Embed:
        return discord.Embed(title="status")

    def on_presence_changed(self) -> None:
        self.calls.append("presence")

    async def refresh_privacy(self) -> None:
        self.calls.append("privacy")

    async def forget_member(self, user_id: int) -> None:
        self.calls.append(f"forget {user_id}")


def channel(guild_id: int, channel_id: int) -> VoiceTarget:
    return cast(discord.VoiceChannel, SimpleNamespace(id=channel_id, guild=SimpleNamespace(id=guild_id)))


class Factory:
    def __init__(self) -> None:
        self.made: list[RecordingSession] = []
        self.fail_guilds: set[int] = set()
        self.delay_s = 0.0

    async def __call__(self, vc: VoiceTarget, text: Any, ended: Callable[[Session, str], None]) -> Session:
        await asyncio.sleep(self.delay_s)
        if vc.guild.id in self.fail_guilds:
            raise ConnectionError("voice server unreachable")
        session = RecordingSession(vc.guild.id, vc.id, ended)
        self.made.append(session)
        return session


async def test_one_session_per_guild_and_a_move_starts_a_fresh_one() -> None:
    factory = Factory()
    manager = SessionManager(factory)
    first, outcome = await manager.join(channel(1, 10))
    assert outcome is JoinOutcome.JOINED
    again, outcome = await manager.join(channel(1, 10))
    assert again is first and outcome is JoinOutcome.ALREADY_HERE
    moved, outcome = await manager.join(channel(1, 11))  # nobody with the bot: anyone may bring it over
    assert outcome is JoinOutcome.MOVED and moved is not first and moved.channel_id == 11
    assert cast(RecordingSession, first).calls == ["close moved to another channel"]  # nothing carried over
    assert manager.get(1) is moved
    await manager.join(channel(2, 20))
    assert len(manager) == 2 and len(factory.made) == 3


async def test_only_a_manager_takes_the_bot_away_from_people() -> None:
    manager = SessionManager(Factory())
    busy, _ = await manager.join(channel(1, 10))
    cast(RecordingSession, busy).humans = 3
    with pytest.raises(InUseError, match=r"in use in <#10> \(3 people\); a manager can move me") as refused:
        await manager.join(channel(1, 11))
    assert (refused.value.channel_id, refused.value.humans) == (10, 3)
    assert manager.get(1) is busy and cast(RecordingSession, busy).calls == []
    taken, outcome = await manager.join(channel(1, 11), may_take_over=True)
    assert outcome is JoinOutcome.MOVED and taken.channel_id == 11
    assert cast(RecordingSession, busy).calls == ["close moved to another channel"]


async def test_a_moderator_drag_starts_afresh_unless_something_else_happened_first() -> None:
    manager = SessionManager(Factory())
    dragged, _ = await manager.join(channel(1, 10))
    fresh = await manager.follow(dragged, channel(1, 12))
    assert fresh is not None and fresh is not dragged and manager.get(1) is fresh and fresh.channel_id == 12
    assert cast(RecordingSession, dragged).calls == ["close moved by a moderator"]
    assert await manager.follow(dragged, channel(1, 13)) is None  # a stale event: the new session stays
    assert manager.get(1) is fresh
    assert not await manager.leave(1, "stale disconnect", only=dragged)
    assert manager.get(1) is fresh


async def test_concurrent_joins_in_one_guild_make_one_session() -> None:
    factory = Factory()
    factory.delay_s = 0.05
    manager = SessionManager(factory)
    results = await asyncio.gather(manager.join(channel(1, 10)), manager.join(channel(1, 10)))
    assert results[0][0] is results[1][0]
    assert len(factory.made) == 1


async def test_a_failing_guild_gets_a_join_error_and_others_are_untouched() -> None:
    factory = Factory()
    manager = SessionManager(factory)
    healthy, _ = await manager.join(channel(1, 10))
    factory.fail_guilds.add(2)
    with pytest.raises(JoinError, match="voice server unreachable"):
        await manager.join(channel(2, 20))
    assert manager.get(2) is None
    assert manager.get(1) is healthy and cast(RecordingSession, healthy).calls == []


async def test_a_session_that_ends_by_itself_is_forgotten() -> None:
    manager = SessionManager(Factory())
    session, _ = await manager.join(channel(1, 10))
    cast(RecordingSession, session).ended(session, "alone")
    assert manager.get(1) is None
    replacement, outcome = await manager.join(channel(1, 10))
    assert replacement is not session and outcome is JoinOutcome.JOINED


async def test_leave_settings_and_shutdown() -> None:
    manager = SessionManager(Factory())
    one, _ = await manager.join(channel(1, 10))
    two, _ = await manager.join(channel(2, 20))
    cast(RecordingSession, two).fail_close = True
    await manager.apply_settings(1, GuildSettings(voice="cedar"))
    await manager.apply_settings(3, GuildSettings(voice="cedar"))  # no session there: nothing happens
    assert await manager.leave(1, "left by command")
    assert not await manager.leave(1, "again")
    await manager.close_all()  # one session failing to close does not stop the others or raise
    assert cast(RecordingSession, one).calls == ["settings cedar", "close left by command"]
    assert cast(RecordingSession, two).calls == ["close shutting down"]
    assert len(manager) == 0


async def test_a_full_process_refuses_a_new_session_with_a_friendly_sentence_but_still_moves() -> None:
    factory = Factory()
    factory.delay_s = 0.05
    manager = SessionManager(factory, max_sessions=2)
    outcomes = await asyncio.gather(
        *(manager.join(channel(guild, guild * 10)) for guild in (1, 2, 3)), return_exceptions=True
    )  # three joins at once: the ones still starting count, so the third is refused
    refused = [o for o in outcomes if isinstance(o, JoinError)]
    assert len(refused) == 1 and str(refused[0]) == texts.PROCESS_FULL
    assert len(manager) == 2 and len(factory.made) == 2
    session, moved = await manager.join(channel(1, 11))  # moving within a guild is not a new session
    assert moved and session.channel_id == 11
    await manager.leave(2, "left")
    await manager.join(channel(3, 30))  # room again
    assert len(manager) == 2


async def test_shutdown_tells_each_channel_before_closing_even_when_one_fails() -> None:
    manager = SessionManager(Factory())
    one, _ = await manager.join(channel(1, 10))
    two, _ = await manager.join(channel(2, 20))
    cast(RecordingSession, two).fail_close = True
    await manager.close_all("restarting", notice=texts.RESTARTING, notice_wait_s=4.0)
    announce = f"announce {texts.RESTARTING} within 4 s"
    assert cast(RecordingSession, one).calls == [announce, "close restarting"]
    assert cast(RecordingSession, two).calls == [announce, "close restarting"]  # its notice failed; still closed
    assert len(manager) == 0
