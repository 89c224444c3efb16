"""The per-guild session's own logic: audio routing, barge-in, transcripts, usage, limits.

The voice link, playback and conversation here are small recording implementations of the session's protocols;
the real ones (loopback voice gateway, local Realtime server) are joined in the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bot import texts
from bot.audio.formats import REALTIME_FRAME_BYTES
from bot.audio.level import rms_dbfs
from bot.persona import default_persona
from bot.session.guild_session import GuildSession
from bot.session.limits import SessionLimits, StopReason
from bot.store import GuildSettings, SettingsStore, Usage
from bot.store.sqlite import DB_FILENAME, SqliteStore
from tests.session.doubles import Clock, Player, Talk, Voice
from tests.store.doubles import FailingWrites
from tests.voice.fake_gateway import wait_until


@dataclass
class Rig:
    session: GuildSession
    voice: Voice
    player: Player
    talk: Talk
    clock: Clock
    posts: list[str]
    ended: list[str]
    store: SettingsStore


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    voice, player, talk, clock = Voice(), Player(), Talk(), Clock()
    posts: list[str] = []
    ended: list[str] = []
    store = await SqliteStore.in_data_dir(tmp_path)
    session = GuildSession(
        guild_id=1,
        persona=default_persona(),
        settings=GuildSettings(transcripts=True),
        voice=voice,
        playback=player,
        conversation=talk,
        store=store,
        privacy={},
        used_today_before_s=0.0,
        limits=SessionLimits(idle_leave_s=60, max_session_s=3600, daily_budget_s=600),
        on_end=lambda _s, reason: ended.append(reason),
        post=posts.append,
        now=clock,
        today=lambda: "2026-11-24",
    )
    yield Rig(session, voice, player, talk, clock, posts, ended, store)
    await store.close()


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_room_audio_is_pushed_as_it_comes(rig: Rig) -> None:
    rig.session.start()
    assert rig.voice.handler is not None
    t = np.arange(480 * 10) / 24_000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    for i in range(10):
        rig.voice.handler(tone[i * REALTIME_FRAME_BYTES : (i + 1) * REALTIME_FRAME_BYTES])
    await settle()
    assert b"".join(rig.talk.audio) == tone  # 24 kHz mono from the voice link: nothing to resample
    await rig.session.close("test")


def voice_frame(amplitude: float = 6000.0) -> bytes:
    """20 ms of a 220 Hz voice-like tone, 24 kHz mono (about -18 dBFS at the default amplitude)."""
    t = np.arange(480) / 24_000
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()


def talk(rig: Rig, user_id: int, ms: int, amplitude: float = 6000.0) -> None:
    """``user_id`` speaks for ``ms``: one frame every 20 ms of the session's clock, with its level."""
    assert rig.voice.user_handler is not None
    for _ in range(ms // 20):
        frame = voice_frame(amplitude)
        rig.voice.user_handler(user_id, frame, rms_dbfs(frame))
        rig.clock.now_s += 0.02


async def test_barge_in_clears_playback_and_truncates_at_what_was_played(rig: Rig) -> None:
    rig.session.start()
    rig.session.on_assistant_audio("item-1", b"\0" * 4800)
    rig.player.played_ms["item-1"] = 640.0
    talk(rig, 5, 100)
    rig.session.on_speech_started()  # the VAD fires after speech began: the look-back counts those 100 ms
    assert rig.talk.interrupts == [] and rig.player.queued  # not yet a quarter second of voice
    talk(rig, 5, 200)
    await settle()
    assert rig.player.queued == {}
    assert rig.talk.interrupts == [{"item-1": 640.0}]
    assert rig.session.figures.interruptions == 1
    await rig.session.close("test")


async def test_a_cough_or_quiet_echo_during_playback_does_not_interrupt(rig: Rig) -> None:
    rig.session.start()
    rig.session.on_assistant_audio("item-1", b"\0" * 4800)
    rig.session.on_speech_started()
    talk(rig, 5, 140)  # a cough
    rig.clock.now_s += 0.5
    rig.session.on_speech_stopped()
    rig.session.on_speech_started()
    talk(rig, 7, 1000, amplitude=80.0)  # echo leaking at about -50 dBFS
    rig.session.on_speech_stopped()
    await settle()
    assert rig.talk.interrupts == [] and rig.player.queued == {"item-1": 4800}
    assert rig.session.figures.ignored_barge_ins == 2
    # The cough's turn is committed, but it was spoken over the bot without interrupting: context, no answer.
    rig.session.on_turn_committed("item-u1", "item-1")
    await settle()
    assert rig.talk.responses == 0 and rig.talk.labels[-1][0] == "item-u1"
    await rig.session.close("test")


async def test_the_room_stream_outlasts_the_server_vad_silence(rig: Rig) -> None:
    """The room stream must keep sending silence longer than the VAD waits, or a turn would never end."""
    rig.session.start()
    assert rig.voice.tail_ms > rig.session.settings.silence_ms
    await rig.session.apply_settings(GuildSettings(silence_ms=1200))
    assert rig.voice.tail_ms > 1200
    await rig.session.close("test")


async def test_no_barge_in_when_interruptions_are_off_or_nothing_plays(rig: Rig) -> None:
    rig.session.on_speech_started()  # nothing playing
    await rig.session.apply_settings(GuildSettings(interruptions=False))
    rig.session.on_assistant_audio("item-1", b"\0" * 4800)
    rig.session.on_speech_started()
    await settle()
    assert rig.talk.interrupts == []
    assert rig.player.queued == {"item-1": 4800}


async def test_transcripts_name_the_speaker_and_latency_is_measured(rig: Rig) -> None:
    rig.voice.spoken = {5: [1000.2, 1000.8]}
    rig.session.on_speech_started()
    rig.clock.now_s = 1001.0
    rig.session.on_speech_stopped()
    rig.session.on_turn_committed("item-u1", None)
    rig.session.on_user_transcript("item-u1", "What's your favourite food?")
    rig.session.on_tool_call("get_your_info", '{"query":"favorite food"}', '{"favorite_food":"ramen"}')
    rig.clock.now_s = 1001.35
    rig.session.on_assistant_audio("item-2", b"\0" * 480)
    rig.session.on_assistant_transcript("Ramen!")
    assert rig.posts[0] == texts.transcript_line("alice", "What's your favourite food?")
    assert rig.posts[1].startswith("-# 🔧 `get_your_info(")
    assert rig.posts[2] == texts.transcript_line(default_persona().name, "Ramen!")
    latency = rig.session.response_latency.percentiles()
    assert latency is not None and latency.p50_ms == pytest.approx(350.0)
    rig.voice.spoken = {5: [1002.0], 7: [1002.1]}
    rig.clock.now_s = 1002.0
    rig.session.on_speech_started()
    rig.clock.now_s = 1002.5
    rig.session.on_speech_stopped()
    rig.session.on_turn_committed("item-u2", "item-u1")
    rig.session.on_user_transcript("item-u2", "hi both")
    assert rig.posts[-1] == texts.transcript_line("several", "hi both")
    assert sorted(rig.session.recent_speakers()) == ["alice", "carol"]


async def test_no_transcripts_when_off(rig: Rig) -> None:
    await rig.session.apply_settings(GuildSettings(transcripts=False))
    rig.session.on_user_transcript("item-u1", "private")
    rig.session.on_assistant_transcript("answer")
    assert rig.posts == []


async def test_usage_is_stored_per_day(rig: Rig) -> None:
    rig.session.on_usage(1200, 300, 0.05)
    rig.clock.now_s += 90
    await rig.session.close("done")
    usage = await rig.store.usage(1, "2026-11-24")
    assert (usage.input_tokens, usage.output_tokens, usage.seconds) == (1200, 300, 90.0)
    assert usage.cost_usd == pytest.approx(0.05)
    assert rig.talk.closed and rig.voice.disconnected


async def test_usage_of_an_unpriced_model_counts_tokens_and_shows_cost_unknown(rig: Rig) -> None:
    rig.session.on_usage(1000, 200, 0.01)
    rig.session.on_usage(500, 100, None)
    assert (rig.session.figures.input_tokens, rig.session.figures.cost_known) == (1500, False)
    fields = {f.name: f.value for f in (await rig.session.status_embed(rig.store)).fields}
    assert fields["This session"] == f"1,500 in / 300 out tokens · {texts.COST_UNKNOWN}"
    await rig.session.close("test")


async def test_limits_end_the_session_with_a_notice(rig: Rig) -> None:
    assert rig.session.check_limits() is None
    rig.voice.humans = 0
    rig.session.on_presence_changed()
    rig.clock.now_s += 61
    assert rig.session.check_limits() is StopReason.ALONE
    await rig.session.end(StopReason.ALONE)
    assert rig.posts[-1] == texts.session_ended(StopReason.ALONE)
    assert rig.ended == ["alone"] and rig.talk.closed
    assert rig.talk.texts == []  # nobody is left to hear a spoken goodbye


async def test_a_limit_is_also_said_out_loud_before_leaving(rig: Rig) -> None:
    rig.session.goodbye_wait_s = 2.0

    async def model_speaks() -> None:
        await asyncio.sleep(0.1)
        rig.session.on_assistant_audio("bye", b"\0" * 4800)
        await asyncio.sleep(0.2)
        rig.player.queued.clear()  # played out

    speaking = asyncio.ensure_future(model_speaks())
    started = asyncio.get_running_loop().time()
    await rig.session.end(StopReason.MAX_LENGTH)
    waited_s = asyncio.get_running_loop().time() - started
    await speaking
    notice = texts.session_ended(StopReason.MAX_LENGTH)
    assert rig.talk.texts == [texts.goodbye_prompt(notice)] and rig.posts[-1] == notice
    assert 0.25 <= waited_s < 1.5  # waited for the goodbye to play, not for the whole allowance
    assert rig.ended == ["max_length"] and rig.talk.closed


async def test_a_goodbye_that_never_comes_does_not_hold_the_session_open(rig: Rig) -> None:
    rig.session.goodbye_wait_s = 0.2
    await asyncio.wait_for(rig.session.end(StopReason.DAILY_BUDGET), 2)
    assert rig.ended == ["daily_budget"] and rig.voice.disconnected


async def test_daily_budget_counts_earlier_use(tmp_path: Path, rig: Rig) -> None:
    await rig.store.add_usage(1, "2026-11-24", seconds=590)
    fresh = GuildSession(
        guild_id=1,
        persona=default_persona(),
        settings=GuildSettings(),
        voice=Voice(),
        playback=Player(),
        conversation=Talk(),
        store=rig.store,
        privacy={},
        used_today_before_s=(await rig.store.usage(1, "2026-11-24")).seconds,
        limits=SessionLimits(daily_budget_s=600),
        on_end=lambda _s, _r: None,
        now=rig.clock,
        today=lambda: "2026-11-24",
    )
    rig.clock.now_s += 10
    assert fresh.check_limits() is StopReason.DAILY_BUDGET


async def test_a_fatal_realtime_error_is_posted_and_ends_the_session(rig: Rig) -> None:
    rig.session.on_fatal_error("the API key was rejected")
    await wait_until(lambda: bool(rig.ended))  # closing writes usage to the store, on its thread
    assert rig.posts[-1] == texts.REALTIME_FAILED.format(reason="the API key was rejected")
    assert rig.ended == ["realtime failed"] and rig.voice.disconnected


async def test_a_lost_answer_and_refused_settings_are_posted_and_the_session_goes_on(rig: Rig) -> None:
    rig.session.on_answer_failed("no answer started within 10 s")
    rig.session.on_settings_rejected("Invalid value: 'bogus'")
    await settle()
    assert rig.posts[-2:] == [
        texts.ANSWER_FAILED.format(reason="no answer started within 10 s"),
        texts.SETTINGS_REFUSED.format(reason="Invalid value: 'bogus'"),
    ]
    assert rig.ended == [] and not rig.voice.disconnected


async def test_a_voice_that_keeps_failing_is_posted_and_ends_the_session(rig: Rig) -> None:
    rig.session.on_playback_failed()
    await wait_until(lambda: bool(rig.ended))
    assert rig.posts[-1] == texts.PLAYBACK_FAILED
    assert rig.ended == ["playback failed"] and rig.voice.disconnected
    rig.session.on_playback_failed()  # a late report after the end changes nothing
    await settle()
    assert rig.ended == ["playback failed"] and rig.posts.count(texts.PLAYBACK_FAILED) == 1


async def test_status_embed_has_the_figures(rig: Rig) -> None:
    rig.session.on_usage(10, 20, 0.001)
    rig.session.on_reconnected()
    embed = await rig.session.status_embed(rig.store)
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Channel"] == "<#10>" and fields["Reconnects"] == "1"
    assert "10 in / 20 out tokens" in (fields["This session"] or "")
    assert fields["Answer latency"] == "no answer yet"


async def test_reset_with_a_new_persona_reconfigures_then_starts_fresh(rig: Rig) -> None:
    rig.session.on_assistant_audio("item-1", b"\0" * 4800)
    pirate = dataclasses.replace(default_persona(), name="Captain Rowan")
    await rig.session.reset(pirate)
    assert rig.player.queued == {} and rig.talk.resets == 1
    assert rig.session.persona.name == "Captain Rowan" and len(rig.talk.settings) == 1
    await rig.session.reset(pirate)  # same persona: no reconfiguration
    assert rig.talk.resets == 2 and len(rig.talk.settings) == 1


async def test_each_committed_turn_is_labelled_then_answered_in_always_mode(rig: Rig) -> None:
    rig.session.start()
    rig.voice.spoken = {5: [1000.1]}
    rig.session.on_speech_started()
    rig.clock.now_s += 1
    rig.session.on_speech_stopped()
    rig.session.on_turn_committed("item-u1", None)
    await settle()
    assert rig.talk.labels == [("item-u1", None, "alice")]
    assert rig.talk.responses == 1
    rig.voice.spoken = {5: [1001.5], 7: [1001.6]}
    rig.session.on_speech_started()
    rig.clock.now_s += 1
    rig.session.on_speech_stopped()
    rig.session.on_turn_committed("item-u2", "item-u1")
    await settle()
    assert rig.talk.labels[-1] == ("item-u2", "item-u1", "several") and rig.talk.responses == 2
    await rig.session.close("test")


async def test_name_mode_answers_only_turns_that_call_the_persona(rig: Rig) -> None:
    await rig.session.apply_settings(GuildSettings(transcripts=True, mode="name"))
    rig.session.start()
    for item_id, text in (("item-u1", "did you see the match?"), ("item-u2", "yeah, Carol scored twice")):
        rig.session.on_speech_started()
        rig.session.on_speech_stopped()
        rig.session.on_turn_committed(item_id, None)
        rig.session.on_user_transcript(item_id, text)
    await settle()
    assert rig.talk.responses == 0 and [label[0] for label in rig.talk.labels] == ["item-u1", "item-u2"]
    rig.session.on_speech_started()
    rig.session.on_speech_stopped()
    rig.session.on_turn_committed("item-u3", "item-u2")
    await settle()
    assert rig.talk.responses == 0  # waits for the words
    rig.session.on_user_transcript("item-u3", "Hey aiko, who won?")
    await settle()
    assert rig.talk.responses == 1
    # Switching mode takes effect at once, without rejoining.
    await rig.session.apply_settings(GuildSettings(mode="always"))
    rig.session.on_speech_started()
    rig.session.on_speech_stopped()
    rig.session.on_turn_committed("item-u4", "item-u3")
    await settle()
    assert rig.talk.responses == 2
    await rig.session.close("test")


async def test_push_to_talk_sends_only_the_holders_audio(rig: Rig) -> None:
    rig.session.start()
    assert rig.voice.gate is not None and rig.voice.gate(5) and rig.voice.gate(7)  # always: everyone
    await rig.session.apply_settings(GuildSettings(mode="push-to-talk"))
    assert not rig.voice.gate(5) and not rig.voice.gate(7)
    assert rig.session.toggle_push_to_talk(5) is True
    assert rig.voice.gate(5) and not rig.voice.gate(7)
    assert rig.session.toggle_push_to_talk(5) is False and not rig.voice.gate(5)
    await rig.session.close("test")


async def test_opted_out_users_are_hidden_in_transcripts_and_not_heard_in_name_mode(rig: Rig) -> None:
    await rig.store.set_privacy(1, 7, no_transcript=True, no_listen=True)
    await rig.session.refresh_privacy()
    rig.session.start()
    assert rig.posts[0] == texts.TRANSCRIPTS_NOTICE
    rig.voice.spoken = {7: [1000.1]}
    rig.session.on_speech_started()
    rig.clock.now_s += 1
    rig.session.on_speech_stopped()
    rig.session.on_turn_committed("item-u1", None)
    rig.session.on_user_transcript("item-u1", "my secret plans for tonight")
    assert not any("secret" in post for post in rig.posts)
    assert rig.posts[-1] == texts.hidden_turn_line()
    assert rig.voice.gate is not None and not rig.voice.gate(7) and rig.voice.gate(5)  # opted out: never sent
    await rig.session.apply_settings(GuildSettings(transcripts=True, mode="name"))
    assert not rig.voice.gate(7) and rig.voice.gate(5)
    assert rig.posts.count(texts.TRANSCRIPTS_NOTICE) == 1  # once per session
    await rig.session.close("test")


async def test_the_model_is_told_who_is_present_when_it_changes(rig: Rig) -> None:
    rig.session.start()
    await settle()
    assert rig.talk.rosters == [("alice", "carol")]
    assert rig.posts[-1] == texts.name_mode_tip(default_persona().name)  # two people, always mode
    rig.session.on_presence_changed()  # nothing changed
    rig.voice.humans = 1
    rig.session.on_presence_changed()
    await settle()
    assert rig.talk.rosters == [("alice", "carol"), ("alice",)]
    await rig.session.close("test")


async def test_talk_time_per_user_and_turn_timings_are_recorded(rig: Rig) -> None:
    rig.session.start()
    talk(rig, 5, 400)
    talk(rig, 7, 200)
    rig.clock.now_s += 0.5
    rig.session.on_speech_started()
    rig.session.on_speech_stopped()
    rig.session.on_turn_committed("item-u1", None)
    rig.clock.now_s += 0.3
    rig.session.on_assistant_audio("item-1", b"\0" * 480)
    assert rig.player.started_handler is not None
    rig.player.started_handler("item-1", rig.clock.now_s + 0.25)
    await settle()
    summary = rig.session.turn_timings.summary()
    assert summary["stopped_to_answer"].p50_ms == pytest.approx(300.0)
    assert summary["answer_to_played"].p50_ms == pytest.approx(250.0)
    fields = {f.name: f.value for f in (await rig.session.status_embed(rig.store)).fields}
    assert "p50 300" in (fields["Turn timing"] or "")
    await rig.session.close("test")
    talkers = dict(await rig.store.top_talkers(1, "2026-11-01", 5))
    assert talkers == {5: pytest.approx(0.4), 7: pytest.approx(0.2)}


# -- failure paths: the store fails --------------------------------------------------------------------------------


@dataclass
class FailingRig(Rig):
    failing: FailingWrites


async def failing_rig(tmp_path: Path, busy_timeout_s: float = 2.0) -> FailingRig:
    """A session on a real SQLite file whose writes fail while ``failing.failing`` is set (a locked or full disk)."""
    voice, player, talk, clock = Voice(), Player(), Talk(), Clock()
    posts: list[str] = []
    ended: list[str] = []
    failing = FailingWrites(await SqliteStore.open(tmp_path / DB_FILENAME, busy_timeout_s=busy_timeout_s))
    failing.failing = False
    session = GuildSession(
        guild_id=1,
        persona=default_persona(),
        settings=GuildSettings(),
        voice=voice,
        playback=player,
        conversation=talk,
        store=failing.as_store(),
        privacy={},
        used_today_before_s=0.0,
        limits=SessionLimits(idle_leave_s=60, max_session_s=3600),
        on_end=lambda _s, reason: ended.append(reason),
        post=posts.append,
        now=clock,
        today=lambda: "2026-11-24",
    )
    return FailingRig(session, voice, player, talk, clock, posts, ended, failing.inner, failing)


async def test_close_releases_everything_when_the_store_fails(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rig = await failing_rig(tmp_path)
    rig.session.start()
    rig.session.on_assistant_audio("a1", b"\0" * 4800)
    rig.failing.failing = True
    rig.session.on_usage(1200, 300, 0.05)  # an answer's usage cannot be written: kept, and no error escapes
    rig.clock.now_s += 90
    await rig.session.close("left by command")
    assert rig.talk.closed and rig.voice.disconnected and rig.player.queued == {}
    assert rig.voice.handler is None
    assert "usage could not be written when the session closed" in caplog.text
    assert "90.0 s, 1200 input tokens, 300 output tokens, $0.0500" in caplog.text  # logged with its figures
    assert await rig.store.usage(1, "2026-11-24") == Usage()
    await rig.store.close()


async def test_an_answers_usage_that_fails_is_kept_and_goes_with_the_next_write(tmp_path: Path) -> None:
    rig = await failing_rig(tmp_path)
    rig.session.start()
    rig.failing.failing = True
    rig.session.on_usage(1200, 300, 0.05)  # written by a task of its own, which fails
    await rig.session.record.settle()
    assert rig.failing.refused == ["adding usage"]
    assert (rig.session.record.unwritten.input_tokens, rig.session.record.unwritten.output_tokens) == (1200, 300)
    rig.failing.failing = False
    rig.session.on_usage(100, 20, 0.01)  # the next answer's write takes the kept figures along
    await rig.session.record.settle()
    assert not rig.session.record.unwritten
    usage = await rig.store.usage(1, "2026-11-24")
    assert (usage.input_tokens, usage.output_tokens) == (1300, 320) and usage.cost_usd == pytest.approx(0.06)
    await rig.session.close("test")
    await rig.store.close()


async def test_close_releases_everything_when_the_sqlite_file_is_locked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A second connection (another process, in real life) holds the write lock while the session closes."""
    rig = await failing_rig(tmp_path, busy_timeout_s=0.2)
    rig.session.start()
    rig.clock.now_s += 30
    locker = sqlite3.connect(tmp_path / DB_FILENAME, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        await rig.session.close("shutting down")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert rig.talk.closed and rig.voice.disconnected
    assert "usage could not be written when the session closed; given up: 30.0 s" in caplog.text
    await rig.store.close()


async def test_a_failing_store_does_not_stop_the_limit_watchdog_nor_lose_usage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.session.lifetime.LIMIT_CHECK_INTERVAL_S", 0.01)
    rig = await failing_rig(tmp_path)
    rig.failing.failing = True
    rig.session.start()
    rig.session.on_usage(100, 20, 0.01)
    rig.clock.now_s += 10
    await wait_until(lambda: rig.failing.refused.count("adding usage") >= 3)  # several watchdog steps fail
    assert (await rig.store.usage(1, "2026-11-24")).seconds == 0.0 and rig.ended == []
    rig.failing.failing = False
    await wait_until(lambda: not rig.session.record.unwritten)  # the next step writes everything kept
    usage = await rig.store.usage(1, "2026-11-24")
    assert (usage.seconds, usage.input_tokens, usage.output_tokens) == (10.0, 100, 20)
    rig.voice.humans = 0
    rig.session.on_presence_changed()
    rig.clock.now_s += 61
    await wait_until(lambda: bool(rig.ended))  # ... and still enforces the limits
    assert rig.ended == ["alone"] and rig.voice.disconnected
    await rig.store.close()


async def test_an_opted_out_member_is_never_sent_and_cannot_interrupt_in_always_mode(rig: Rig) -> None:
    await rig.store.set_privacy(1, 7, no_listen=True)
    await rig.session.refresh_privacy()
    rig.session.start()
    assert rig.session.mode.value == "always"
    assert rig.voice.gate is not None and not rig.voice.gate(7) and rig.voice.gate(5)
    rig.session.on_assistant_audio("item-1", b"\0" * 4800)
    rig.session.on_speech_started()
    talk(rig, 7, 600)  # loud and long: would interrupt if carol were heard
    await settle()
    assert rig.talk.interrupts == [] and rig.player.queued == {"item-1": 4800}
    await rig.session.close("test")
    assert dict(await rig.store.top_talkers(1, "2026-11-01", 5)) == {}  # and no talk time is kept for her


async def test_forget_member_drops_what_the_live_session_has_not_written(rig: Rig) -> None:
    rig.session.start()
    rig.voice.spoken = {5: [1000.1]}
    talk(rig, 5, 400)
    talk(rig, 7, 200)
    rig.session.on_speech_started()
    rig.session.on_speech_stopped()
    rig.session.on_turn_committed("item-u1", None)
    assert "alice" in rig.session.recent_speakers()
    await rig.session.forget_member(5)
    assert "alice" not in rig.session.recent_speakers()
    await rig.session.close("test")
    assert dict(await rig.store.top_talkers(1, "2026-11-01", 5)) == {7: pytest.approx(0.2)}
