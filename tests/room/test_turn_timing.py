"""Turn timings: four timestamps per turn, segments per turn, p50/p95 over the recent turns."""

from __future__ import annotations

import pytest

from bot.room.latency import Percentiles
from bot.room.turn_timing import (
    ANSWER_TO_PLAYED,
    SEGMENTS,
    STOPPED_TO_ANSWER,
    VOICED_TO_PLAYED,
    VOICED_TO_STOPPED,
    TurnTimings,
)


def speak(timings: TurnTimings, start_s: float, end_s: float) -> None:
    """Voiced frames every 20 ms from ``start_s`` up to and including ``end_s``."""
    t = start_s
    while t <= end_s + 1e-9:
        timings.voiced_frame(t)
        t += 0.02


def turn(timings: TurnTimings, at_s: float, vad_ms: float, model_ms: float, playback_ms: float) -> None:
    speak(timings, at_s, at_s + 1.0)
    stopped_s = at_s + 1.0 + vad_ms / 1000
    timings.speech_stopped(stopped_s)
    timings.answer_audio(stopped_s + model_ms / 1000)
    timings.answer_audio(stopped_s + model_ms / 1000 + 0.05)  # later deltas do not count
    played_s = stopped_s + (model_ms + playback_ms) / 1000
    timings.first_frame_played(played_s)
    timings.first_frame_played(played_s + 0.02)


def ms(stats: Percentiles) -> tuple[int, float, float]:
    return stats.count, round(stats.p50_ms, 3), round(stats.p95_ms, 3)


def test_nothing_measured_yet_is_an_empty_summary() -> None:
    assert TurnTimings().summary() == {}


def test_each_segment_of_complete_turns() -> None:
    timings = TurnTimings()
    turn(timings, 10.0, vad_ms=500, model_ms=400, playback_ms=60)
    turn(timings, 20.0, vad_ms=520, model_ms=800, playback_ms=40)
    summary = timings.summary()
    assert list(summary) == list(SEGMENTS)
    assert ms(summary[VOICED_TO_STOPPED]) == (2, 500.0, 520.0)
    assert ms(summary[STOPPED_TO_ANSWER]) == (2, 400.0, 800.0)
    assert ms(summary[ANSWER_TO_PLAYED]) == (2, 40.0, 60.0)
    assert ms(summary[VOICED_TO_PLAYED]) == (2, 960.0, 1360.0)


def test_percentiles_cover_only_the_last_n_turns() -> None:
    timings = TurnTimings(turns=10)
    for i in range(30):
        turn(timings, 10.0 * i, vad_ms=500, model_ms=100 + 10 * i, playback_ms=20)
    stats = timings.summary()[STOPPED_TO_ANSWER]
    assert ms(stats) == (10, 340.0, 390.0)  # turns 20..29: 300..390 ms


def test_a_turn_with_no_answer_still_measures_the_vad_wait() -> None:
    timings = TurnTimings()
    speak(timings, 1.0, 2.0)
    timings.speech_stopped(2.5)
    timings.no_answer()
    timings.answer_audio(3.0)  # a later answer (a /voice say) is not that turn's
    timings.first_frame_played(3.1)
    summary = timings.summary()
    assert list(summary) == [VOICED_TO_STOPPED]
    assert summary[VOICED_TO_STOPPED].p50_ms == pytest.approx(500.0)


def test_an_unanswered_turn_is_recorded_when_the_next_one_starts() -> None:
    timings = TurnTimings()
    speak(timings, 1.0, 2.0)
    timings.speech_stopped(2.4)  # name mode, not addressed: the lead never says no_answer
    assert timings.summary() == {}
    turn(timings, 5.0, vad_ms=600, model_ms=300, playback_ms=20)
    summary = timings.summary()
    assert ms(summary[VOICED_TO_STOPPED]) == (2, 400.0, 600.0)
    assert summary[STOPPED_TO_ANSWER].count == 1
    assert summary[STOPPED_TO_ANSWER].p50_ms == pytest.approx(300.0)


def test_answers_without_a_turn_are_ignored() -> None:
    timings = TurnTimings()
    timings.answer_audio(1.0)  # the greeting
    timings.first_frame_played(1.1)
    assert timings.summary() == {}


def test_a_cancelled_answer_keeps_what_it_measured() -> None:
    timings = TurnTimings()
    speak(timings, 1.0, 2.0)
    timings.speech_stopped(2.5)
    timings.answer_audio(2.9)  # the answer is cancelled before it plays (a barge-in)
    speak(timings, 3.0, 4.0)  # voiced frames after speech_stopped belong to the next turn
    timings.speech_stopped(4.5)
    timings.answer_audio(4.7)
    timings.first_frame_played(4.8)
    summary = timings.summary()
    assert ms(summary[VOICED_TO_STOPPED]) == (2, 500.0, 500.0)
    assert ms(summary[STOPPED_TO_ANSWER]) == (2, 200.0, 400.0)
    assert ms(summary[ANSWER_TO_PLAYED]) == (1, 100.0, 100.0)
    assert ms(summary[VOICED_TO_PLAYED]) == (1, 800.0, 800.0)


def test_events_handed_over_out_of_order_are_placed_by_their_timestamps() -> None:
    timings = TurnTimings()
    speak(timings, 1.0, 1.5)
    timings.speech_stopped(2.3)
    timings.voiced_frame(1.8)  # the socket thread's last frames arrive after speech_stopped
    timings.voiced_frame(1.7)
    timings.first_frame_played(2.9)  # played reported before the delta that caused it
    assert timings.summary() == {}  # not complete yet
    timings.answer_audio(2.8)
    summary = timings.summary()
    assert ms(summary[VOICED_TO_STOPPED]) == (1, 500.0, 500.0)
    assert ms(summary[STOPPED_TO_ANSWER]) == (1, 500.0, 500.0)
    assert ms(summary[ANSWER_TO_PLAYED]) == (1, 100.0, 100.0)
    assert ms(summary[VOICED_TO_PLAYED]) == (1, 1100.0, 1100.0)


def test_impossible_orders_are_dropped_not_recorded_negative() -> None:
    timings = TurnTimings()
    speak(timings, 1.0, 2.0)
    timings.speech_stopped(2.5)
    timings.answer_audio(3.0)
    timings.first_frame_played(2.9)  # before the answer it plays: a clock mix-up
    summary = timings.summary()
    assert ANSWER_TO_PLAYED not in summary
    assert ms(summary[VOICED_TO_PLAYED]) == (1, 900.0, 900.0)


def test_missing_or_stale_voiced_frames_and_late_answers() -> None:
    timings = TurnTimings(max_answer_wait_s=10.0, max_silence_s=3.0)
    timings.voiced_frame(1.0)  # a stray frame long before the speech the VAD reports
    timings.speech_stopped(60.0)
    timings.answer_audio(75.0)  # 15 s later: not this turn's answer
    timings.no_answer()
    assert timings.summary() == {}
    timings.speech_stopped(80.0)  # no voiced frame at all
    timings.answer_audio(80.4)
    timings.first_frame_played(80.5)
    timings.speech_stopped(90.0)
    summary = timings.summary()
    assert VOICED_TO_STOPPED not in summary and VOICED_TO_PLAYED not in summary
    assert ms(summary[STOPPED_TO_ANSWER]) == (1, 400.0, 400.0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="turns"):
        TurnTimings(turns=0)
    with pytest.raises(ValueError, match="positive"):
        TurnTimings(max_answer_wait_s=0)
