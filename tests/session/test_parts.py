"""Each part of a guild session on its own, with the session's other parts absent: audio routing, turn-taking, the
record and the lifetime. (The joined session is tested in ``test_guild_session.py``.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from bot import texts
from bot.audio.formats import REALTIME_FRAME_BYTES
from bot.persona import default_persona
from bot.session.audio_routing import VAD_TAIL_MARGIN_MS, AudioRouting
from bot.session.lifetime import SessionLifetime
from bot.session.limits import SessionLimits, StopReason
from bot.session.record import SessionRecord
from bot.session.state import SessionState, TaskSet
from bot.session.turns import TurnTaking
from bot.store import GuildSettings, Privacy, SettingsStore
from bot.store.sqlite import SqliteStore
from tests.session.doubles import Clock, Player, Talk, Voice
from tests.store.doubles import FailingWrites
from tests.store.locking import Locker, locked_store_file

DAY = "2026-11-30"


@pytest.fixture
async def locked(tmp_path: Path) -> AsyncIterator[tuple[Path, Locker]]:
    """A migrated store file, write-locked by another process."""
    async with locked_store_file(tmp_path) as held:
        yield held


def make_state(clock: Clock, **settings: object) -> SessionState:
    return SessionState(
        guild_id=1,
        persona=default_persona(),
        settings=GuildSettings(**settings),  # type: ignore[arg-type]
        now=clock,
        today=lambda: DAY,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SettingsStore]:
    opened = await SqliteStore.in_data_dir(tmp_path)
    yield opened
    await opened.close()


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


# -- audio routing -------------------------------------------------------------------------------------------------


async def test_routing_pushes_room_audio_as_it_is_and_hands_on_the_levels_until_detached() -> None:
    clock, voice, player, talk = Clock(), Voice(), Player(), Talk()
    state = make_state(clock, silence_ms=700)
    tasks = TaskSet(1)
    routing = AudioRouting(state, voice, player, talk, spawn=tasks.spawn)
    levels: list[tuple[int, float, float]] = []
    played: list[float] = []
    routing.attach(
        gate=lambda uid: uid == 5, on_user_level=lambda *a: levels.append(a), on_first_frame_played=played.append
    )
    assert voice.tail_ms == 700 + VAD_TAIL_MARGIN_MS and voice.gate is not None and voice.gate(5) and not voice.gate(7)
    assert voice.handler is not None and voice.user_handler is not None and player.started_handler is not None
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(480) / 24_000)).astype("<i2").tobytes()
    assert len(tone) == REALTIME_FRAME_BYTES
    for _ in range(5):
        voice.handler(tone)
    voice.user_handler(5, tone, -15.1)  # the level the voice link measured, handed on (not measured again)
    player.started_handler("item-1", 12.5)
    await settle()
    assert talk.audio == [tone] * 5  # 24 kHz mono already: pushed untouched, frame by frame
    [(user_id, level_dbfs, at_s)] = levels
    assert user_id == 5 and at_s == clock.now_s and level_dbfs == -15.1
    assert played == [12.5]
    routing.play("item-1", b"\0" * 480)
    assert player.queued == {"item-1": 480}
    routing.detach()
    assert voice.handler is None and voice.user_handler is None and player.started_handler is None


# -- turn-taking ---------------------------------------------------------------------------------------------------


def turn_rig(
    clock: Clock, store: SettingsStore, **settings: object
) -> tuple[TurnTaking, SessionRecord, Voice, Player, Talk]:
    voice, player, talk = Voice(), Player(), Talk()
    state = make_state(clock, **settings)
    record = SessionRecord(state, store, member_names=voice.member_names)
    return TurnTaking(state, voice, player, talk, record, spawn=TaskSet(1).spawn), record, voice, player, talk


async def test_turn_taking_labels_answers_and_keeps_spoken_over_turns_as_context(store: SettingsStore) -> None:
    clock = Clock()
    turns, record, voice, player, talk = turn_rig(clock, store)
    voice.spoken = {5: [1000.1]}
    turns.speech_started()
    clock.now_s += 1
    turns.speech_stopped()
    turns.turn_committed("u1", None)
    await settle()
    assert talk.labels == [("u1", None, "alice")] and talk.responses == 1 and record.figures.answered_turns == 1
    assert player.lead_ins == 1  # asking for the answer starts the anti-clipping lead-in while the model thinks
    player.feed("a1", b"\0" * 4800)  # the bot is answering; a quiet turn over it does not interrupt
    turns.speech_started()
    turns.speech_stopped()
    turns.turn_committed("u2", "a1")
    await settle()
    assert talk.responses == 1 and talk.interrupts == [] and record.figures.ignored_barge_ins == 1
    assert player.lead_ins == 1  # a turn not answered starts none
    assert turns.user_transcript("u2", "mm-hm") == frozenset()


async def test_turn_taking_name_mode_waits_for_the_words(store: SettingsStore) -> None:
    clock = Clock()
    turns, _record, _voice, _player, talk = turn_rig(clock, store, mode="name")
    turns.turn_committed("u1", None)
    turns.user_transcript("u1", "what a match")
    turns.turn_committed("u2", "u1")
    await settle()
    assert talk.responses == 0 and _player.lead_ins == 0
    turns.user_transcript("u2", "Aiko, who won?")
    await settle()
    assert talk.responses == 1 and _player.lead_ins == 1


async def test_turn_taking_gate_follows_mode_privacy_and_the_floor(store: SettingsStore) -> None:
    clock = Clock()
    turns, *_ = turn_rig(clock, store, mode="push-to-talk")
    assert not turns.may_send(5)
    assert turns.toggle_push_to_talk(5) and turns.may_send(5)
    turns._state.privacy = {5: Privacy(no_listen=True)}
    assert not turns.may_send(5)


async def test_turn_taking_barge_in_truncates_at_what_was_played(store: SettingsStore) -> None:
    clock = Clock()
    turns, record, _voice, player, talk = turn_rig(clock, store)
    player.feed("a1", b"\0" * 4800)
    player.played_ms["a1"] = 320.0
    turns.speech_started()
    for _ in range(20):  # 400 ms of a clear voice
        turns.hear(5, -18.0, clock.now_s)
        clock.now_s += 0.02
    await settle()
    assert player.queued == {} and talk.interrupts == [{"a1": 320.0}] and record.figures.interruptions == 1


# -- the record ----------------------------------------------------------------------------------------------------


async def test_record_posts_transcripts_hides_opted_out_speakers_and_writes_usage(store: SettingsStore) -> None:
    clock, voice = Clock(), Voice()
    posts: list[str] = []
    state = make_state(clock, transcripts=True)
    record = SessionRecord(state, store, member_names=voice.member_names, post=posts.append)
    record.announce_transcripts()
    record.announce_transcripts()
    record.user_transcript(frozenset({5}), "hello")
    state.privacy = {7: Privacy(no_transcript=True)}
    record.user_transcript(frozenset({5, 7}), "our secret")
    assert posts == [texts.TRANSCRIPTS_NOTICE, texts.transcript_line("alice", "hello"), texts.hidden_turn_line()]
    record.voiced_frame(5, clock.now_s)
    record.usage(100, 50, 0.01)
    await record.write_usage(30.0)
    await record.write_usage(30.0)  # nothing new: nothing added
    usage = await store.usage(1, DAY)
    assert (usage.seconds, usage.input_tokens, usage.output_tokens) == (30.0, 100, 50)
    assert dict(await store.top_talkers(1, DAY, 5)) == {5: pytest.approx(0.02)}


def test_record_times_the_answer_from_the_end_of_speech(store: SettingsStore) -> None:
    clock = Clock()
    record = SessionRecord(make_state(clock), store, member_names=dict)
    record.speech_stopped(1000.0)
    record.answer_requested()
    record.answer_audio(1000.4)
    record.answer_audio(1000.9)  # later audio of the same answer is not a new latency
    latency = record.response_latency.percentiles()
    assert latency is not None and latency.p50_ms == pytest.approx(400.0) and record.figures.answered_turns == 1


def test_a_failing_post_is_logged_not_raised(store: SettingsStore, caplog: pytest.LogCaptureFixture) -> None:
    def broken(_message: str) -> None:
        raise RuntimeError("channel gone")

    record = SessionRecord(make_state(Clock(), transcripts=True), store, member_names=dict, post=broken)
    record.notify("hello")
    assert "posting to the text channel failed" in caplog.text


# -- the lifetime --------------------------------------------------------------------------------------------------


async def test_lifetime_closes_once_releasing_every_link_even_when_one_fails(store: SettingsStore) -> None:
    clock, player, talk = Clock(), Player(), Talk()
    state = make_state(clock)
    record = SessionRecord(state, store, member_names=dict)
    released: list[str] = []
    detached: list[bool] = []

    async def failing() -> None:
        released.append("voice")
        raise ConnectionError("gone")

    async def poster() -> None:
        released.append("poster")

    lifetime = SessionLifetime(
        state,
        record,
        player,
        talk,
        limits=SessionLimits(),
        used_today_before_s=0.0,
        releases=(talk.close, failing, poster),
        detach=lambda: detached.append(True),
    )
    player.feed("a1", b"\0" * 480)
    clock.now_s += 12
    await lifetime.close("test")
    await lifetime.close("again")
    assert state.closed and detached == [True] and talk.closed and released == ["voice", "poster"]
    assert player.queued == {} and (await store.usage(1, DAY)).seconds == 12.0


async def test_lifetime_checks_loneliness_and_the_daily_budget(store: SettingsStore) -> None:
    clock = Clock()
    state = make_state(clock)
    lifetime = SessionLifetime(
        state,
        SessionRecord(state, store, member_names=dict),
        Player(),
        Talk(),
        limits=SessionLimits(idle_leave_s=30, daily_budget_s=600),
        used_today_before_s=580.0,
        releases=(),
        detach=lambda: None,
    )
    lifetime.set_alone(True)
    clock.now_s += 15
    assert lifetime.check() is None
    clock.now_s += 10
    assert lifetime.check() is StopReason.DAILY_BUDGET  # 580 + 25 s > 600 s
    lifetime.set_alone(False)
    assert lifetime.timer.remaining_today_s(clock.now_s, 580.0) == 0.0


async def test_usage_the_store_refused_is_kept_for_the_next_step(
    store: SettingsStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    failing = FailingWrites(store)
    record = SessionRecord(make_state(clock), failing.as_store(), member_names=dict)
    record.voiced_frame(5, clock.now_s)
    record.usage(100, 50, 0.01)  # this answer's tokens: its own write task is refused, and the session goes on
    assert not await record.write_usage(30.0)
    assert failing.refused == ["adding usage", "adding usage"]  # the answer's write, then the step's
    assert caplog.text.count("usage not written yet") == 2 and "kept for the next try" in caplog.text
    kept = record.unwritten
    assert (kept.seconds, kept.input_tokens, kept.output_tokens, kept.talk_s) == (30.0, 100, 50, {5: 0.02})
    failing.failing = False
    record.voiced_frame(5, clock.now_s)
    assert await record.write_usage(45.0)
    usage = await store.usage(1, DAY)
    assert (usage.seconds, usage.input_tokens, usage.output_tokens) == (45.0, 100, 50)  # nothing refused was lost
    assert dict(await store.top_talkers(1, DAY, 5)) == {5: pytest.approx(0.04)}  # both frames
    assert not record.unwritten


class HeldWrites:
    """A real store whose ``add_usage`` waits for :attr:`release` (a slow disk or server), after setting
    :attr:`entered`."""

    def __init__(self, inner: SettingsStore) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def add_usage(self, guild_id: int, day: str, **counters: Any) -> None:
        self.entered.set()
        await self.release.wait()
        await self.inner.add_usage(guild_id, day, **counters)


async def test_usage_arriving_while_a_write_is_under_way_is_neither_lost_nor_counted_twice(
    store: SettingsStore,
) -> None:
    clock = Clock()
    held = HeldWrites(store)
    record = SessionRecord(make_state(clock), cast(SettingsStore, held), member_names=dict)
    record.voiced_frame(5, clock.now_s)
    step = asyncio.get_running_loop().create_task(record.write_usage(10.0))
    await held.entered.wait()  # the step has taken its figures and waits on the store
    record.usage(100, 50, 0.01)  # an answer ends meanwhile
    record.voiced_frame(7, clock.now_s)
    forgetting = asyncio.get_running_loop().create_task(record.forget_member(5))
    await asyncio.sleep(0.01)
    assert not forgetting.done()  # it waits for the write under way (forget-me deletes what that write stores)
    held.release.set()
    assert not await step  # written, but the answer's tokens arrived after its figures were taken
    await forgetting
    await record.settle()
    assert not record.unwritten
    usage = await store.usage(1, DAY)
    assert (usage.seconds, usage.input_tokens, usage.output_tokens) == (10.0, 100, 50)
    assert dict(await store.top_talkers(1, DAY, 5)) == {5: pytest.approx(0.02), 7: pytest.approx(0.02)}


async def test_a_write_that_outlasts_its_bound_and_then_lands_is_counted_once(
    locked: tuple[Path, Locker],
) -> None:
    """The store's call gives up waiting while SQLite still waits for the lock; once it is released the write lands.
    Its figures are not put back for the next step (which would write them a second time)."""
    path, locker = locked
    store = await SqliteStore.open(path, busy_timeout_s=20.0, call_timeout_s=0.3)
    clock = Clock()
    record = SessionRecord(make_state(clock), store, member_names=dict)
    record.voiced_frame(5, clock.now_s)
    assert not await record.write_usage(30.0)  # not known to be written
    assert record.unwritten.seconds == 0.0  # in doubt: not put back yet
    await locker.release()
    await record.settle()  # the write under way lands
    assert await record.write_usage(30.0)
    usage = await store.usage(1, DAY)
    assert usage.seconds == 30.0  # once
    assert dict(await store.top_talkers(1, DAY, 5)) == {5: pytest.approx(0.02)}
    await store.close()


async def test_a_write_that_outlasts_its_bound_and_then_fails_is_put_back(locked: tuple[Path, Locker]) -> None:
    path, locker = locked
    store = await SqliteStore.open(path, busy_timeout_s=0.8, call_timeout_s=0.3)
    clock = Clock()
    record = SessionRecord(make_state(clock), store, member_names=dict)
    assert not await record.write_usage(30.0)  # the call's bound passes while SQLite still waits for the lock
    await record.settle()  # then SQLite's own wait ends: the write failed
    assert record.unwritten.seconds == 30.0  # put back for the next step
    await locker.release()
    assert await record.write_usage(30.0)
    assert (await store.usage(1, DAY)).seconds == 30.0
    await store.close()


async def test_close_waits_for_the_answers_writes_and_logs_what_it_gives_up(
    store: SettingsStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock, player, talk = Clock(), Player(), Talk()
    state = make_state(clock)
    failing = FailingWrites(store)
    failing.failing = False
    record = SessionRecord(state, failing.as_store(), member_names=dict)
    lifetime = SessionLifetime(
        state, record, player, talk, limits=SessionLimits(), used_today_before_s=0.0, releases=(), detach=lambda: None
    )
    record.usage(300, 60, 0.02)  # its write task has not run yet when the session closes
    clock.now_s += 20
    await lifetime.close("test")
    usage = await store.usage(1, DAY)
    assert (usage.seconds, usage.input_tokens, usage.output_tokens) == (20.0, 300, 60)
    assert "given up" not in caplog.text

    state = make_state(clock)
    record = SessionRecord(state, failing.as_store(), member_names=dict)
    lifetime = SessionLifetime(
        state, record, player, talk, limits=SessionLimits(), used_today_before_s=0.0, releases=(), detach=lambda: None
    )
    failing.failing = True
    record.usage(7, 3, 0.5)
    await lifetime.close("test")
    assert "usage could not be written when the session closed; given up: 0.0 s, 7 input tokens" in caplog.text


def test_the_record_forgets_speakers_quiet_past_the_window(store: SettingsStore) -> None:
    clock = Clock()
    names = {5: "alice", 7: "carol"}
    record = SessionRecord(make_state(clock), store, member_names=lambda: names)
    record.turn_spoken_by(frozenset({5}), clock.now_s)
    clock.now_s += 200
    record.turn_spoken_by(frozenset({7}), clock.now_s)
    assert record.recent_speakers() == ["carol"] and len(record._recent_speakers) == 1  # alice's entry is gone
