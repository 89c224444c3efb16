from __future__ import annotations

import gc
import random
import tracemalloc
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from bot.audio.formats import DISCORD_FRAME_BYTES, DISCORD_SILENCE_FRAME, REALTIME, REALTIME_FRAME_BYTES
from bot.voice.room import RoomMixer, SpeakerTimeline

SILENCE = DISCORD_SILENCE_FRAME


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s

    def advance_ms(self, ms: float) -> None:
        self.now_s += ms / 1000


def frame(value: int) -> bytes:
    return np.full(DISCORD_FRAME_BYTES // 2, value, dtype="<i2").tobytes()


#: The voice client's clock checks the room every half frame.
CHECK_MS = 10.0


def drain(room: RoomMixer, at_ms: float, out: list[tuple[float, bytes]]) -> None:
    """Every slot complete now, as the voice client hands them over after a push or an end of speech."""
    while (slot := room.take_ready()) is not None:
        out.append((at_ms, slot))


def play(
    room: RoomMixer,
    clock: Clock,
    events: Sequence[tuple[float, int, bytes | None]],
    until_ms: float,
    *,
    check_ms: float = CHECK_MS,
) -> list[tuple[float, bytes]]:
    """Drive ``room`` as the voice client does, for ``until_ms`` from now: ``events`` are ``(at_ms, user, frame)``
    pushes (at level -20 dBFS) or, with ``None`` for the frame, ends of talk spurts, each followed by
    :meth:`RoomMixer.take_ready`; the clock checks the room every ``check_ms`` (at 5, 15 ... ms for 10 ms:
    :meth:`RoomMixer.tick`, then take_ready). Returns the slots sent, each with the instant (ms from the start) it
    left."""
    # (instant, 0: an event or 1: a check, event index); at the same instant events go first, in their order.
    timed = [(at_ms, 0, index) for index, (at_ms, _, _) in enumerate(events)]
    timed += [(check_ms / 2 + check_ms * k, 1, 0) for k in range(int(until_ms / check_ms))]
    start_s = clock.now_s
    out: list[tuple[float, bytes]] = []
    for at_ms, kind, index in sorted(timed):
        clock.now_s = start_s + at_ms / 1000
        if kind == 1:
            slot = room.tick()
            if slot is not None:
                out.append((at_ms, slot))
            drain(room, at_ms, out)
            continue
        _, user, pcm16 = events[index]
        if pcm16 is None:
            room.end_of_speech(user)
        else:
            room.push(user, pcm16, -20.0)
        drain(room, at_ms, out)
    clock.now_s = start_s + until_ms / 1000
    return out


def run(room: RoomMixer, clock: Clock, ms: float) -> list[bytes]:
    """The slots ``room`` sends in the next ``ms`` with nothing more pushed."""
    return [slot for _, slot in play(room, clock, [], ms)]


def test_idle_room_produces_nothing() -> None:
    clock = Clock()
    room = RoomMixer(clock)
    assert run(room, clock, 100) == []
    assert room.take_ready() is None and room.tick() is None
    assert not room.active and len(room.timeline) == 0


def test_one_speaker_then_tail_then_idle() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=100, prime_frames=2)
    for value in (1000, 2000, 3000):
        room.push(7, frame(value))
    out = run(room, clock, 300)
    assert out == [frame(1000), frame(2000), frame(3000)] + [SILENCE] * 5
    assert not room.active
    assert room.timeline.speakers_between(100.0, 100.05) == {7}


def test_a_longer_tail_set_later_applies_to_the_next_run() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=40, prime_frames=1)
    room.set_tail_ms(200)
    assert room.tail_ms == 200
    room.push(7, frame(1))
    assert run(room, clock, 400) == [frame(1)] + [SILENCE] * 10
    assert not room.active
    with pytest.raises(ValueError, match="tail_ms"):
        room.set_tail_ms(-5)


def test_two_speakers_are_mixed_with_saturation() -> None:
    clock = Clock()
    room = RoomMixer(clock, prime_frames=1, tail_ms=0)
    room.push(1, frame(1000) + frame(30000))
    room.push(2, frame(-300) + frame(10000))
    assert run(room, clock, 100) == [frame(700), frame(32767)]


def test_partial_frames_are_carried_between_pushes() -> None:
    clock = Clock()
    room = RoomMixer(clock, prime_frames=1)
    data = frame(5) + frame(6)
    room.push(1, data[:1000])
    assert room.take_ready() is None and room.tick() is None
    room.push(1, data[1000:5000])
    assert room.take_ready() == frame(5)
    room.push(1, data[5000:])
    assert room.take_ready() == frame(6)


def test_priming_waits_for_a_second_frame_or_the_prime_time() -> None:
    clock = Clock()
    room = RoomMixer(clock, prime_frames=2, prime_ms=40)
    room.push(1, frame(9))
    assert room.tick() == SILENCE  # waiting for a second frame
    clock.advance_ms(20)
    assert room.tick() == SILENCE
    clock.advance_ms(20)
    assert room.tick() == frame(9)  # waited 40 ms: play it


def test_end_of_speech_plays_the_last_frame_at_once() -> None:
    clock = Clock()
    room = RoomMixer(clock, prime_frames=3)
    room.push(1, frame(4))
    assert room.take_ready() is None  # priming
    room.end_of_speech(1)
    assert room.take_ready() == frame(4)


def test_queue_overflow_drops_oldest_and_counts() -> None:
    clock = Clock()
    room = RoomMixer(clock, prime_frames=1, max_queue_frames=3)
    for value in range(6):
        room.push(1, frame(value))
    assert room.dropped_frames == 3
    assert run(room, clock, 60)[:3] == [frame(3), frame(4), frame(5)]


def test_timeline_attributes_overlapping_turns() -> None:
    clock = Clock()
    room = RoomMixer(clock, prime_frames=1, tail_ms=0)
    # Alice talks 5 frames, then Alice and Bob together 3 frames, then Bob alone 2 (his first waits for the deadline:
    # Alice's next frame might still have come).
    events: list[tuple[float, int, bytes | None]] = []
    for i in range(10):
        if i < 8:
            events.append((20.0 * i, 1, frame(1000)))
        if i >= 5:
            events.append((20.0 * i, 2, frame(2000)))
    play(room, clock, events, 300)
    timeline = room.timeline
    assert timeline.speakers_between(100.0, 100.08) == {1}
    assert timeline.speakers_between(100.1, 100.14) == {1, 2}
    assert timeline.speakers_between(100.16, 100.5) == {2}
    assert timeline.speakers_between(99.0, 99.9) == set()
    assert timeline.voiced_ms(1, 100.0, 101.0) == pytest.approx(160)
    assert timeline.voiced_ms(2, 100.0, 101.0) == pytest.approx(100)
    assert timeline.speakers_between(101.0, 100.0) == set()


def test_a_speakers_silent_frames_do_not_make_them_a_speaker() -> None:
    clock = Clock()
    room = RoomMixer(clock, prime_frames=1, tail_ms=0)
    for value in (3000, 3000, 0, 2, 0):  # two words, then Opus silence and hiss at about -84 dBFS
        room.push(1, frame(value))
    run(room, clock, 100)
    assert room.timeline.voiced_ms(1, 100.0, 101.0) == pytest.approx(40)
    assert room.timeline.speakers_between(100.05, 101.0) == set()


def test_timeline_is_bounded_and_monotonic() -> None:
    timeline = SpeakerTimeline(max_segments=8)  # trimmed two at a time once 8 + 8 // 4 segments are passed
    for i in range(11):
        timeline.record(float(i), frozenset({i}))
    assert len(timeline) == 9
    assert timeline.speakers_between(0, 20) == set(range(2, 11))
    with pytest.raises(ValueError, match="backwards"):
        timeline.record(1.0, frozenset())


def test_timeline_keeps_one_segment_per_change_of_speakers() -> None:
    timeline = SpeakerTimeline()
    at_s = 100.0
    for users, frames in (({1}, 50), (set(), 10), ({1}, 20), ({1, 2}, 5), ({2}, 30)):
        for _ in range(frames):
            timeline.record(at_s, frozenset(users))
            at_s += 0.02
    assert len(timeline) == 4  # alice, (a pause: not stored), alice again, both, bob
    assert timeline.speakers_between(100.0, 100.9) == {1}
    assert timeline.speakers_between(101.01, 101.19) == set()  # the pause
    assert timeline.voiced_ms(1, 100.0, 110.0) == pytest.approx((50 + 20 + 5) * 20)
    assert timeline.voiced_ms(2, 100.0, 110.0) == pytest.approx((5 + 30) * 20)
    assert timeline.voiced_ms(1, 100.0, 100.49) == pytest.approx(25 * 20)  # a window cutting a segment


def test_a_gap_in_the_frames_starts_a_new_segment() -> None:
    timeline = SpeakerTimeline()
    timeline.record(10.0, frozenset({1}))
    timeline.record(10.02, frozenset({1}))
    timeline.record(11.0, frozenset({1}))  # the room went idle in between
    assert len(timeline) == 2
    assert timeline.speakers_between(10.1, 10.9) == set()


def _conversation_of_three(timeline: SpeakerTimeline, hours: float, *, start_s: float = 1000.0) -> float:
    """Three people talking in turns for ``hours`` (a frame every 20 ms): each turn is 2-12 s of words (0.2-0.6 s)
    and pauses (0.1-0.4 s), now and then someone talks over the end of a turn. Returns the last instant."""
    rng = random.Random(14)
    at_s = start_s
    end_s = start_s + hours * 3600
    speaker = 1
    while at_s < end_s:
        turn_end_s = at_s + rng.uniform(2, 12)
        while at_s < turn_end_s:
            for voiced, seconds in ((True, rng.uniform(0.2, 0.6)), (False, rng.uniform(0.1, 0.4))):
                users = frozenset({speaker}) if voiced else frozenset()
                for _ in range(round(seconds / 0.02)):
                    timeline.record(at_s, users)
                    at_s += 0.02
        following = rng.choice([u for u in (1, 2, 3) if u != speaker])
        if rng.random() < 0.2:  # overlap for half a second
            for _ in range(25):
                timeline.record(at_s, frozenset({speaker, following}))
                at_s += 0.02
        speaker = following
    return at_s


def _allocated_bytes(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes still allocated after ``build()`` (and the object built, kept alive while measuring)."""
    gc.collect()
    tracemalloc.start()
    try:
        built = build()
        gc.collect()
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current, built


def test_eight_hours_of_speech_stay_under_a_megabyte() -> None:
    size_bytes, timeline = _allocated_bytes(lambda: _timeline_after(8.0))
    assert isinstance(timeline, SpeakerTimeline)
    assert size_bytes < 1_000_000, size_bytes
    # Still answers about the latest turns.
    assert timeline.speakers_between(1000.0 + 8 * 3600 - 30, 1000.0 + 8 * 3600 + 60) <= {1, 2, 3}
    assert timeline.speakers_between(1000.0 + 8 * 3600 - 30, 1000.0 + 8 * 3600 + 60)


def _timeline_after(hours: float) -> SpeakerTimeline:
    timeline = SpeakerTimeline()
    _conversation_of_three(timeline, hours)
    return timeline


def test_speakers_changing_every_frame_still_stay_under_a_megabyte() -> None:
    def flapping() -> SpeakerTimeline:
        timeline = SpeakerTimeline()
        for frame_index in range(200_000):  # over an hour, a different set of speakers each frame
            timeline.record(frame_index * 0.02, frozenset({1 + frame_index % 3, 4 + frame_index % 7}))
        return timeline

    size_bytes, timeline = _allocated_bytes(flapping)
    assert size_bytes < 1_000_000, size_bytes
    assert isinstance(timeline, SpeakerTimeline)
    assert timeline.speakers_between(199_999 * 0.02, 199_999 * 0.02) == {1 + 199_999 % 3, 4 + 199_999 % 7}


def test_who_spoke_is_answered_without_copying_the_timeline() -> None:
    timeline = _timeline_after(1.0)
    last_s = 1000.0 + 3600
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        speakers = timeline.speakers_between(last_s - 20, last_s + 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert speakers and speakers <= {1, 2, 3}
    assert peak - before < 4096, peak - before  # a set of three ids, not a copy of the timeline


def test_forget_drops_a_users_queue() -> None:
    clock = Clock()
    room = RoomMixer(clock, prime_frames=1, tail_ms=0)
    room.push(1, frame(1) + frame(1))
    room.forget(1)
    assert room.take_ready() is None and room.tick() is None and not room.active


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        RoomMixer(Clock(), prime_frames=0)
    with pytest.raises(ValueError):
        RoomMixer(Clock(), tail_ms=-1)
    with pytest.raises(ValueError):
        RoomMixer(Clock(), frame_period_s=0)
    with pytest.raises(ValueError):
        RoomMixer(Clock(), deadline_grace_ms=-1)


def test_room_and_packet_core_stay_pure() -> None:
    import subprocess
    import sys

    code = (
        "import sys, bot.voice.room, bot.voice.jitter, bot.voice.rtp;"
        "print(sorted(m for m in ('asyncio', 'discord', 'websockets', 'davey') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- jitter priming ----------------------------------------------------------------------------------------------------


def play_stream(
    room: RoomMixer,
    clock: Clock,
    arrivals_ms: Sequence[float],
    until_ms: float,
    ends_ms: Sequence[float] = (),
    *,
    check_ms: float = CHECK_MS,
) -> list[tuple[float, bytes]]:
    """Frames of user 1 (frame ``n`` holds the value ``n + 1``) arriving at the given instants and the ends of their
    talk spurts (the silence frame) at ``ends_ms``, driven as the voice client does (:func:`play`)."""
    events: list[tuple[float, int, bytes | None]] = [(at_ms, 1, frame(n + 1)) for n, at_ms in enumerate(arrivals_ms)]
    events += [(at_ms, 1, None) for at_ms in ends_ms]
    return play(room, clock, events, until_ms, check_ms=check_ms)


def test_a_steady_stream_is_primed_with_one_frame_only() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=0)
    out = play_stream(room, clock, [20.0 * n for n in range(50)], 1100)
    assert out == [(20.0 * n, frame(n + 1)) for n in range(50)]  # each frame leaves as it arrives: no priming wait
    assert room.underruns == 0 and room.priming_target(1) == 1


def test_a_single_speakers_frame_leaves_on_its_push_without_a_tick() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=0)
    for n in range(5):
        room.push(1, frame(n + 1), -20.0)
        assert room.take_ready() == frame(n + 1)
        assert room.take_ready() is None
        clock.advance_ms(20)
    assert room.timeline.voiced_ms(1, 0, 1000) == pytest.approx(100)


def test_priming_waits_for_a_second_frame_and_then_keeps_one_in_reserve() -> None:
    clock = Clock()
    room = RoomMixer(clock, prime_frames=2, tail_ms=0)
    room.push(1, frame(1))
    assert room.take_ready() is None  # held: a jittery speaker's first frame waits for the second
    clock.advance_ms(20)
    room.push(1, frame(2))
    assert room.take_ready() == frame(1) and room.take_ready() is None  # frame 2 stays, in reserve
    clock.advance_ms(20)
    room.push(1, frame(3))
    assert room.take_ready() == frame(2) and room.take_ready() is None
    # Frame 4 is late: at the deadline the reserve plays, so the stream has no gap and nobody underran.
    clock.advance_ms(20 + 10)
    assert room.tick() == frame(3)
    clock.advance_ms(5)
    room.push(1, frame(4))
    assert room.take_ready() is None  # the new reserve
    room.end_of_speech(1)
    assert room.take_ready() == frame(4)
    assert room.underruns == 0


def mix_of(*frames: bytes) -> bytes:
    return sum(np.frombuffer(f, "<i2").astype(np.int32) for f in frames).astype("<i2").tobytes()  # type: ignore[union-attr]


def test_two_speakers_leave_as_one_slot_when_the_second_frame_arrives() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=0)
    alice, bob = [frame(1000 + n) for n in range(5)], [frame(n + 1) for n in range(4)]
    events: list[tuple[float, int, bytes | None]] = [(20.0 * n, 1, alice[n]) for n in range(5)]
    events += [(20.0 * n + 13, 2, bob[n]) for n in range(4)]  # both steady; bob's frames come 13 ms after alice's
    out = play(room, clock, events, 200)
    # Alice's first frame had left alone when bob's first came; from then on each slot holds a frame of each and
    # leaves when the second of the two arrives (here alice's, 7 ms after bob's).
    assert out == [(0.0, alice[0])] + [(20.0 * (n + 1), mix_of(alice[n + 1], bob[n])) for n in range(4)]
    assert room.timeline.speakers_between(100.0, 100.01) == {1}
    assert room.timeline.speakers_between(100.02, 101.0) == {1, 2}
    assert room.timeline.voiced_ms(2, 100.0, 101.0) == pytest.approx(80)


def test_a_late_speaker_is_left_out_at_the_deadline_and_plays_in_a_later_slot() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=0)
    alice, bob = [frame(1000 + n) for n in range(7)], [frame(n + 1) for n in range(5)]
    events: list[tuple[float, int, bytes | None]] = [(20.0 * n, 1, alice[n]) for n in range(7)]
    bob_at_ms = [5.0, 25.0, 76.0, 85.0, 105.0]  # his frame 2 is 31 ms late
    events += [(at_ms, 2, bob[n]) for n, at_ms in enumerate(bob_at_ms)]
    out = play(room, clock, events, 200)
    assert out[:3] == [(0.0, alice[0]), (20.0, mix_of(alice[1], bob[0])), (40.0, mix_of(alice[2], bob[1]))]
    # Alice's frame 3 waits for bob's until the deadline (the last slot, a frame period and the 10 ms grace ago;
    # the first check after it), which sends it without him.
    assert out[3] == (75.0, alice[3])
    # Bob ran dry mid-spurt and came back: late. One isolated late frame is counted, and holds no reserve.
    assert room.underruns == 1 and room.priming_target(2) == 1
    # His late frame plays in the next slot, mixed with alice's, and the two go on in step.
    assert out[4:] == [
        (80.0, mix_of(alice[4], bob[2])),
        (100.0, mix_of(alice[5], bob[3])),
        (120.0, mix_of(alice[6], bob[4])),
    ]
    assert room.timeline.speakers_between(100.07, 100.079) == {1}


def test_a_speaker_late_twice_within_the_window_gets_a_frame_of_reserve() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=0)
    alice, bob = [frame(1000 + n) for n in range(12)], [frame(n + 1) for n in range(10)]
    events: list[tuple[float, int, bytes | None]] = [(20.0 * n, 1, alice[n]) for n in range(12)]
    bob_at_ms = [5.0, 25.0, 76.0, 85.0, 105.0, 125.0, 196.0, 205.0, 225.0, 245.0]  # frames 2 and 6 come 31 ms late
    events += [(at_ms, 2, bob[n]) for n, at_ms in enumerate(bob_at_ms)]
    play(room, clock, events, 300)
    assert room.underruns == 2 and room.priming_target(2) == 2  # a pattern, not a hiccup: he plays a frame behind
    assert room.priming_target(1) == 1


def test_the_tail_follows_the_last_frame_in_real_time() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=100)
    out = play_stream(room, clock, [20.0 * n for n in range(3)], 300, ends_ms=[41.0])
    assert out[:3] == [(0.0, frame(1)), (20.0, frame(2)), (40.0, frame(3))]
    # The deadline sends the tail: the first a frame period and the grace after the last frame, then one per period.
    assert out[3:] == [(75.0, SILENCE), (95.0, SILENCE), (115.0, SILENCE), (135.0, SILENCE), (155.0, SILENCE)]
    assert not room.active


def test_a_room_run_faster_than_real_time_scales_its_deadlines() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=60, frame_period_s=0.002, deadline_grace_ms=10)  # 10x, as the soak runs it
    out = play_stream(room, clock, [2.0 * n for n in range(3)], 30, ends_ms=[4.1], check_ms=1.0)
    # The tail is due a period and the grace (2 + 1 ms) after the last frame, then every 2 ms: 7, 9 and 11 ms.
    assert [at_ms for at_ms, _ in out] == [0.0, 2.0, 4.0, 7.5, 9.5, 11.5]
    assert not room.active


def test_priming_adapts_to_a_jittery_speaker_and_comes_back_down_when_steady() -> None:
    """Twenty short talk spurts (0.5 s, then 0.5 s of pause) with up to 35 ms of network jitter. One frame of priming
    runs dry in nearly every spurt (an audible gap each time); the adaptive target learns the jitter in the first
    spurts and keeps the rest whole."""
    rng = random.Random(7)
    arrivals: list[float] = []
    ends: list[float] = []
    for spurt in range(20):
        sent = [1000.0 * spurt + 20.0 * n for n in range(25)]
        arrivals += [at + rng.uniform(0, 35) for at in sent]
        ends.append(sent[-1] + 20 + 36)  # the silence frames follow the last one
    fixed_clock, adaptive_clock = Clock(), Clock()
    fixed = RoomMixer(fixed_clock, tail_ms=0, max_prime_frames=1)
    adaptive = RoomMixer(adaptive_clock, tail_ms=0)
    play_stream(fixed, fixed_clock, arrivals, 20_000, ends)
    play_stream(adaptive, adaptive_clock, arrivals, 20_000, ends)
    assert fixed.underruns >= 15  # about one gap per spurt
    assert adaptive.underruns <= 4 and adaptive.priming_target(1) > 1

    # Five seconds of a steady stream bring the target back down.
    target = adaptive.priming_target(1)
    adaptive_clock.advance_ms(1000)
    play_stream(adaptive, adaptive_clock, [20.0 * n for n in range(600)], 12_200)
    assert adaptive.priming_target(1) < target


def test_a_speaker_ending_a_talk_spurt_is_not_an_underrun() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=0)
    room.push(1, frame(1))
    room.end_of_speech(1)
    assert room.take_ready() == frame(1)
    assert run(room, clock, 40) == [] and not room.active  # the deadline found the queue ended: idle
    room.push(1, frame(2))  # the next talk spurt, soon after
    assert room.underruns == 0 and room.priming_target(1) == 1
    assert room.take_ready() == frame(2)


def test_the_level_handed_in_decides_who_is_voiced_and_is_not_measured_again() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=0)
    room.push(1, frame(3000), -90.0)  # the receiver measured this frame as silence
    room.push(2, frame(3000), -10.0)
    room.tick()
    assert room.timeline.speakers_between(0, 1000) == {2}


def test_the_voice_clients_room_mixes_24k_mono_frames() -> None:
    clock = Clock()
    room = RoomMixer(clock, tail_ms=20, pcm_format=REALTIME)
    one = np.full(REALTIME_FRAME_BYTES // 2, 1000, dtype="<i2").tobytes()
    two = np.full(REALTIME_FRAME_BYTES // 2, -300, dtype="<i2").tobytes()
    room.push(1, one + one[:100])  # a frame and a bit: the bit waits for the rest of its frame
    room.push(2, two)
    mixed = np.full(REALTIME_FRAME_BYTES // 2, 700, dtype="<i2").tobytes()
    assert run(room, clock, 100) == [mixed, bytes(REALTIME_FRAME_BYTES)]
    assert not room.active
    assert room.silence_frame == bytes(REALTIME_FRAME_BYTES)
