"""The barge-in guard fed real 20 ms frames of 48 kHz stereo pcm16 (levels measured by rms_dbfs)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.audio.level import rms_dbfs
from bot.room.echo_guard import BargeInGuard

FRAME_S = 0.020
SAMPLES_PER_FRAME = 960
_rng = np.random.default_rng(7)


def frame(level_dbfs: float | None, *, noise: bool = False) -> bytes:
    """20 ms of 48 kHz stereo pcm16 at ``level_dbfs`` RMS: a 250 Hz tone or white noise; None is silence."""
    if level_dbfs is None:
        return bytes(SAMPLES_PER_FRAME * 4)
    rms = 32768.0 * 10 ** (level_dbfs / 20.0)
    if noise:
        mono = _rng.standard_normal(SAMPLES_PER_FRAME) * rms
    else:
        t = np.arange(SAMPLES_PER_FRAME) / 48_000
        mono = np.sin(2 * math.pi * 250.0 * t) * rms * math.sqrt(2.0)
    stereo = np.repeat(np.clip(np.round(mono), -32768, 32767).astype("<i2"), 2)
    return stereo.tobytes()


class Room:
    """Feeds frames to a guard on a shared 20 ms clock."""

    def __init__(self, guard: BargeInGuard, start_s: float = 100.0) -> None:
        self.guard = guard
        self.now_s = start_s

    def play(self, user_id: int, level_dbfs: float | None, ms: float, *, noise: bool = False) -> None:
        """``ms`` of one user at ``level_dbfs`` (None: silence, which Discord does not send at all)."""
        for _ in range(round(ms / 20)):
            if level_dbfs is not None:
                self.guard.feed_pcm16(user_id, frame(level_dbfs, noise=noise), self.now_s)
            self.now_s += FRAME_S

    def together(self, levels: dict[int, float], ms: float) -> None:
        for _ in range(round(ms / 20)):
            for user_id, level in levels.items():
                self.guard.feed_pcm16(user_id, frame(level), self.now_s)
            self.now_s += FRAME_S

    def speak_sentence(self, user_id: int, level_dbfs: float, syllables: int) -> None:
        """Syllables of 160 ms with 60 ms pauses between them, as speech has."""
        for _ in range(syllables):
            self.play(user_id, level_dbfs, 160)
            self.play(user_id, None, 60)


def learnt_room(**guard_options: float) -> Room:
    """A room where user 1 speaks at -20 dBFS and user 2 at -34 dBFS (a quiet microphone) while the bot is silent."""
    room = Room(BargeInGuard(**guard_options))  # type: ignore[arg-type]
    room.play(1, -20.0, 2000)
    room.play(2, -34.0, 2000)
    room.play(2, None, 1000)
    room.guard.set_playing(True)
    return room


def test_the_frames_have_the_level_they_claim() -> None:
    assert rms_dbfs(frame(-20.0)) == pytest.approx(-20.0, abs=0.05)
    assert rms_dbfs(frame(-50.0, noise=True)) == pytest.approx(-50.0, abs=0.5)


def test_references_are_the_median_of_each_users_speech_while_the_bot_is_silent() -> None:
    room = learnt_room()
    assert room.guard.reference_dbfs(1) == pytest.approx(-20.0, abs=0.1)
    assert room.guard.reference_dbfs(2) == pytest.approx(-34.0, abs=0.1)
    assert room.guard.reference_dbfs() == pytest.approx(-27.0, abs=0.1)  # the room: between the two
    assert room.guard.reference_dbfs(3) is None
    room.play(1, -40.0, 5000)  # echo while the bot plays is not learnt
    assert room.guard.reference_dbfs(1) == pytest.approx(-20.0, abs=0.1)


def test_a_cough_never_interrupts() -> None:
    room = learnt_room()
    room.guard.arm(room.now_s)
    room.play(1, -8.0, 140, noise=True)  # loud, but one short burst
    room.play(1, None, 1000)
    assert room.guard.armed
    assert not room.guard.should_interrupt(room.now_s)
    assert room.guard.interrupter is None


def test_a_sentence_interrupts_after_about_a_quarter_second_of_voice() -> None:
    room = learnt_room()
    armed_at_s = room.now_s
    room.guard.arm(armed_at_s)
    syllable = [-22.0] * 8 + [None] * 3  # 160 ms of voice, a 60 ms pause
    decided_at_s = None
    for level in syllable * 3:
        room.play(1, level, 20)
        if decided_at_s is None and room.guard.should_interrupt(room.now_s):
            decided_at_s = room.now_s
    assert decided_at_s is not None
    assert decided_at_s - armed_at_s == pytest.approx(0.32)  # 13 voiced frames, with the pause in between
    assert room.guard.interrupter == 1


def test_quiet_echo_never_interrupts() -> None:
    room = learnt_room()
    room.guard.arm(room.now_s)
    room.play(1, -50.0, 3000, noise=True)
    room.play(3, -50.0, 3000)  # even for a user with no reference at all: below the absolute floor
    assert not room.guard.should_interrupt(room.now_s)


def test_levels_are_judged_against_each_users_own_speech() -> None:
    room = learnt_room()
    room.guard.arm(room.now_s)
    room.play(1, -36.0, 2000)  # 16 dB below how user 1 speaks: echo from their speakers
    assert not room.guard.should_interrupt(room.now_s)
    room.play(2, -36.0, 300)  # the same level is user 2's normal voice
    assert room.guard.should_interrupt(room.now_s)
    assert room.guard.interrupter == 2


def test_a_user_never_heard_is_judged_against_the_room_and_the_floor() -> None:
    room = learnt_room()
    room.guard.arm(room.now_s)
    room.play(3, -44.0, 1000)  # above the floor, but far below the room's speech
    assert not room.guard.should_interrupt(room.now_s)
    room.play(3, -25.0, 300)
    assert room.guard.interrupter == 3
    fresh = Room(BargeInGuard())  # nothing learnt: only the absolute floor applies
    fresh.guard.set_playing(True)
    fresh.guard.arm(fresh.now_s)
    fresh.play(9, -44.0, 300)
    assert fresh.guard.should_interrupt(fresh.now_s)


def test_voice_is_counted_per_user_not_summed_over_the_room() -> None:
    room = learnt_room()
    room.guard.arm(room.now_s)
    room.together({1: -20.0, 2: -34.0}, 160)  # two people go "hm" at once: 320 ms of voice between them
    room.play(1, None, 1000)
    assert not room.guard.should_interrupt(room.now_s)


def test_a_long_pause_starts_the_count_again_but_short_pauses_do_not() -> None:
    room = learnt_room()
    room.guard.arm(room.now_s)
    for _ in range(4):  # four coughs, a second apart: 560 ms of loud audio in all
        room.play(1, -10.0, 140, noise=True)
        room.play(1, None, 1000)
    assert not room.guard.should_interrupt(room.now_s)
    room.play(1, -10.0, 140, noise=True)  # two bursts 200 ms apart add up, like syllables do
    room.play(1, None, 200)
    room.play(1, -10.0, 140, noise=True)
    assert room.guard.should_interrupt(room.now_s)


def test_speech_just_before_arming_counts_because_the_vad_fires_late() -> None:
    room = learnt_room()
    room.play(1, -21.0, 200)
    room.guard.arm(room.now_s)
    assert not room.guard.should_interrupt(room.now_s)
    room.play(1, -21.0, 60)
    assert room.guard.should_interrupt(room.now_s)
    room.guard.disarm()
    room.play(1, None, 1000)
    room.play(1, -21.0, 200)
    room.guard.arm(room.now_s + 1.0)  # a look-back that reaches only the frames of the last 300 ms
    room.now_s += 1.0
    room.play(1, -21.0, 100)
    assert not room.guard.should_interrupt(room.now_s)


def test_disarm_forgets_the_decision() -> None:
    room = learnt_room()
    assert not room.guard.should_interrupt(room.now_s)  # not armed
    room.play(1, -20.0, 400)  # speech while not armed is not an interruption
    room.play(1, None, 1000)
    assert not room.guard.should_interrupt(room.now_s)
    room.guard.arm(room.now_s)
    room.play(1, -20.0, 260)
    assert room.guard.should_interrupt(room.now_s)
    room.guard.disarm()
    assert not room.guard.armed and not room.guard.should_interrupt(room.now_s)
    assert room.guard.interrupter is None
    room.guard.arm(room.now_s + 1.0)
    assert not room.guard.should_interrupt(room.now_s + 1.0)


def test_arming_again_while_armed_keeps_the_first_time() -> None:
    guard = BargeInGuard()
    guard.arm(10.0)
    for i in range(8):
        guard.feed(1, -20.0, 10.0 + i * FRAME_S)
    guard.arm(20.0)  # a second speech_started: the count goes on from 10 s
    for i in range(8, 13):
        guard.feed(1, -20.0, 10.0 + i * FRAME_S)
    assert guard.should_interrupt(11.0)


def test_a_decision_is_not_reported_before_the_callers_now() -> None:
    guard = BargeInGuard()
    guard.arm(10.0)
    for i in range(13):
        guard.feed(1, -20.0, 10.0 + i * FRAME_S)
    assert guard.should_interrupt(10.3)
    assert not guard.should_interrupt(10.2)  # decided on the frame at 10.24 s


def test_bad_levels_count_as_silence_and_bad_settings_are_refused() -> None:
    guard = BargeInGuard()
    guard.arm(0.0)
    for i in range(50):
        guard.feed(1, math.nan, i * FRAME_S)
        guard.feed(2, math.inf, i * FRAME_S)
    assert not guard.should_interrupt(10.0)
    guard.feed_pcm16(3, b"", 1.0)  # an empty frame is silence, not an error
    with pytest.raises(ValueError, match="min_voiced_ms"):
        BargeInGuard(min_voiced_ms=-1)
    with pytest.raises(ValueError, match="threshold_db"):
        BargeInGuard(threshold_db=6.0)
    with pytest.raises(ValueError, match="frame_ms"):
        BargeInGuard(frame_ms=0)
    with pytest.raises(ValueError, match="min_reference_frames"):
        BargeInGuard(reference_frames=10, min_reference_frames=20)


def test_forget_drops_a_users_reference() -> None:
    room = learnt_room()
    room.guard.forget(2)
    assert room.guard.reference_dbfs(2) is None
    room.guard.arm(room.now_s)
    room.play(2, -36.0, 300)  # now judged against the room (-27): 9 dB below is still voice
    assert room.guard.interrupter == 2


def test_retain_keeps_only_the_people_present() -> None:
    room = learnt_room()
    room.play(3, -25.0, 200)
    assert room.guard.users_known == {1, 2, 3}
    room.guard.retain({1, 99})  # 2 and 3 left; 99 came in and has not spoken
    assert room.guard.users_known == {1}
    assert room.guard.reference_dbfs(2) is None and room.guard.reference_dbfs(1) is not None
    room.guard.retain(set())
    assert room.guard.users_known == frozenset()
