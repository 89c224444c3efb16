from __future__ import annotations

import threading

import discord
import numpy as np
import pytest

from bot.audio.formats import DISCORD_FRAME_BYTES, DISCORD_SILENCE_FRAME, REALTIME, REALTIME_FRAME_BYTES
from bot.audio.resample import RealtimeToDiscordResampler
from bot.voice.playback import OPUS_SILENCE_FRAME, OpusPlaybackSource, PlaybackSource


def tone_24k(seconds: float, frequency_hz: float = 440.0, amplitude: float = 9000.0) -> bytes:
    t = np.arange(int(seconds * 24_000)) / 24_000
    return np.rint(amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype("<i2").tobytes()


def chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, start, index = [], 0, 0
    while start < len(data):
        size = sizes[index % len(sizes)]
        out.append(data[start : start + size])
        start += size
        index += 1
    return out


def read_n(source: PlaybackSource, n: int) -> list[bytes]:
    return [source.read() for _ in range(n)]


def test_is_a_pcm_audio_source() -> None:
    source = PlaybackSource(lead_silence_ms=0)
    assert isinstance(source, discord.AudioSource)
    assert source.is_opus() is False


def test_silence_before_any_audio_never_empty() -> None:
    source = PlaybackSource(lead_silence_ms=0)
    frames = read_n(source, 20)
    assert frames == [DISCORD_SILENCE_FRAME] * 20
    assert not source.is_playing


def test_output_is_the_resampled_input_in_exact_frames() -> None:
    speech = tone_24k(0.5) + tone_24k(0.31, 950.0)
    source = PlaybackSource(prebuffer_ms=60, lead_silence_ms=0)
    for chunk in chunks(speech, [137, 2400, 961, 5]):  # odd sizes: a byte is carried to the next chunk
        source.feed("item_1", chunk)
    frames = read_n(source, 60)
    assert all(len(f) == DISCORD_FRAME_BYTES for f in frames)
    reference = RealtimeToDiscordResampler()
    expected = reference.process(speech) + reference.flush()
    played = b"".join(frames)
    assert played[: len(expected)] == expected
    assert played[len(expected) :] == bytes(len(played) - len(expected))
    assert source.played_ms("item_1") == pytest.approx(len(speech) / 48)  # 24 kHz mono: 48 bytes per ms
    assert not source.is_playing


def test_start_up_buffer_waits_for_enough_audio_or_the_prebuffer_time() -> None:
    source = PlaybackSource(prebuffer_ms=60, lead_silence_ms=0)
    source.feed("a", tone_24k(0.02))  # 20 ms: less than the start-up buffer
    assert read_n(source, 3) == [DISCORD_SILENCE_FRAME] * 3
    assert source.read() != DISCORD_SILENCE_FRAME  # waited 60 ms: play what there is
    source2 = PlaybackSource(prebuffer_ms=60, lead_silence_ms=0)
    source2.feed("a", tone_24k(0.1))
    assert source2.read() != DISCORD_SILENCE_FRAME  # enough buffered: no wait


def test_clear_takes_effect_at_the_next_read_and_reports_played_ms() -> None:
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=0)
    source.feed("answer", tone_24k(2.0))
    frames = read_n(source, 10)
    assert all(f != DISCORD_SILENCE_FRAME for f in frames)
    assert source.is_playing
    played = source.clear()
    assert played == {"answer": pytest.approx(200.0)}
    assert source.read() == DISCORD_SILENCE_FRAME
    assert not source.is_playing
    assert source.played_ms("answer") == pytest.approx(200.0)
    assert source.clear() == {}


def test_played_ms_is_split_between_items_within_a_frame() -> None:
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=0)
    source.feed("first", tone_24k(0.03))  # 30 ms
    source.feed("second", tone_24k(0.5, 660.0))
    read_n(source, 2)  # 40 ms: all of "first" (flushed at the item change) and 10 ms of "second"
    assert source.played_ms("first") == pytest.approx(30.0)
    assert source.played_ms("second") == pytest.approx(10.0)
    assert source.clear() == {"second": pytest.approx(10.0)}


def test_new_audio_after_clear_plays_from_its_start() -> None:
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=0)
    source.feed("a", tone_24k(1.0))
    read_n(source, 3)
    source.clear()
    fresh = tone_24k(0.2, 300.0)
    source.feed("b", fresh)
    reference = RealtimeToDiscordResampler()
    assert source.read() == (reference.process(fresh))[:DISCORD_FRAME_BYTES]


def test_close_ends_the_stream() -> None:
    source = PlaybackSource(lead_silence_ms=0)
    source.feed("a", tone_24k(0.2))
    source.close()
    assert source.read() == b""
    source.feed("a", tone_24k(0.2))
    assert source.read() == b""


def test_negative_prebuffer_is_refused() -> None:
    with pytest.raises(ValueError, match="prebuffer_ms"):
        PlaybackSource(prebuffer_ms=-1)


def test_concurrent_feed_and_read_keep_every_byte_and_exact_frames() -> None:
    source = PlaybackSource(prebuffer_ms=40, lead_silence_ms=0)
    audio = tone_24k(1.5)
    reference = RealtimeToDiscordResampler()
    expected = reference.process(audio) + reference.flush()
    frames: list[bytes] = []
    done = threading.Event()

    def player() -> None:
        while not done.is_set() or source.is_playing:
            frames.append(source.read())

    thread = threading.Thread(target=player)
    thread.start()
    for chunk in chunks(audio, [480, 1234, 96]):
        source.feed("item", chunk)
    done.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert all(len(f) == DISCORD_FRAME_BYTES for f in frames)
    # Underruns may split the stream, but every fed sample is played exactly once.
    audible = b"".join(f for f in frames if f != DISCORD_SILENCE_FRAME)
    assert len(audible) >= len(expected)
    assert source.played_ms("item") == pytest.approx(len(audio) / 48)


@pytest.mark.parametrize("duration_ms", [5, 10, 19, 20, 21, 40, 60, 61, 100, 333])
def test_every_item_length_plays_out_completely(duration_ms: int) -> None:
    source = PlaybackSource(prebuffer_ms=60, lead_silence_ms=0)
    audio = tone_24k(duration_ms / 1000)
    source.feed("item", audio)
    frames = read_n(source, duration_ms // 20 + 10)
    assert all(len(f) == DISCORD_FRAME_BYTES for f in frames)
    assert source.played_ms("item") == pytest.approx(len(audio) / 48)
    assert not source.is_playing


def test_an_item_whose_output_ends_on_a_frame_boundary_still_plays_its_tail() -> None:
    # 501 samples at 24 kHz resample to exactly one frame now; the filter's held-back tail must still play.
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=0)
    audio = tone_24k(501 / 24_000)
    source.feed("item", audio)
    read_n(source, 5)
    assert source.played_ms("item") == pytest.approx(len(audio) / 48)
    assert not source.is_playing


def test_a_chunk_shorter_than_the_filter_delay_still_plays_out() -> None:
    source = PlaybackSource(prebuffer_ms=60, lead_silence_ms=0)
    source.feed("tiny", tone_24k(10 / 24_000))  # 10 samples: all held back by the resampler at first
    assert source.is_playing
    read_n(source, 6)
    assert source.played_ms("tiny") == pytest.approx(10 / 24)
    assert not source.is_playing


def first_audio_index(frames: list[bytes]) -> int:
    return next(i for i, f in enumerate(frames) if f != DISCORD_SILENCE_FRAME)


def test_an_answer_after_a_pause_starts_with_lead_silence_that_is_not_counted_as_played() -> None:
    clock_s = [50.0]
    started: list[tuple[str, float]] = []
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=200, clock=lambda: clock_s[0])
    source.set_audio_started_handler(lambda item, at_s: started.append((item, at_s)))
    source.feed("a", tone_24k(0.3))
    frames = read_n(source, 30)
    assert first_audio_index(frames) == 10  # 200 ms of lead silence, then the answer
    assert source.played_ms("a") == pytest.approx(300, abs=20)  # lead silence is not part of the item
    assert started == [("a", 50.0)]

    # Straight after (no pause): the next item starts without lead silence, and is reported once.
    source.feed("b", tone_24k(0.1))
    frames = read_n(source, 3)
    assert frames[0] != DISCORD_SILENCE_FRAME
    assert [item for item, _ in started] == ["a", "b"]

    # A pause is measured by the clock, not by reads (a shared sender does not read idle sources).
    read_n(source, 3)
    clock_s[0] += 0.39
    source.feed("c", tone_24k(0.1))
    assert read_n(source, 1)[0] != DISCORD_SILENCE_FRAME
    # After a pause of more than 400 ms, the lead silence comes back, even with no reads in between.
    read_n(source, 10)
    clock_s[0] += 0.41
    source.feed("d", tone_24k(0.1))
    assert first_audio_index(read_n(source, 20)) == 10


def test_a_barge_in_during_lead_silence_reports_nothing_played() -> None:
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=200)
    source.feed("a", tone_24k(0.5))
    read_n(source, 5)
    assert source.clear() == {"a": 0.0}
    assert read_n(source, 3) == [DISCORD_SILENCE_FRAME] * 3


def test_a_failing_audio_started_handler_does_not_stop_playback() -> None:
    def boom(_item: str, _at_s: float) -> None:
        raise RuntimeError("handler bug")

    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=0)
    source.set_audio_started_handler(boom)
    source.feed("a", tone_24k(0.1))
    assert read_n(source, 1)[0] != DISCORD_SILENCE_FRAME


def test_the_opus_source_encodes_answers_and_sends_silence_for_free() -> None:
    source = OpusPlaybackSource(prebuffer_ms=0, lead_silence_ms=0)
    assert source.is_opus() is True
    assert read_n(source, 3) == [OPUS_SILENCE_FRAME] * 3  # idle: no encoding at all
    tone = tone_24k(0.2)
    source.feed("a", tone)
    packets = read_n(source, 12)
    assert all(p != OPUS_SILENCE_FRAME for p in packets[:9]) and packets[-1] == OPUS_SILENCE_FRAME
    decoder = discord.opus.Decoder()  # type: ignore[no-untyped-call]
    decoded = b"".join(decoder.decode(p, fec=False) for p in packets if p != OPUS_SILENCE_FRAME)
    reference = b"".join(read_n(fed_pcm_source(tone), 10))
    pcm = np.frombuffer(decoded, "<i2").astype(np.float64)
    assert np.std(pcm) == pytest.approx(np.std(np.frombuffer(reference, "<i2")), rel=0.15)  # the answer, audible
    source.close()
    assert source.read() == b""  # closing still stops the player


def fed_pcm_source(pcm16_24k: bytes) -> PlaybackSource:
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=0)
    source.feed("a", pcm16_24k)
    return source


def test_the_queue_is_capped_and_an_endless_answer_is_cut_not_holed() -> None:
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=0, max_buffered_ms=2_000)
    second = tone_24k(1.0)
    for _ in range(30):  # a server streaming 30 s of one answer at once
        source.feed("item_endless", second)
    assert source.buffered_ms <= 2_000 + 1_000  # the cap, overshot by at most the chunk that reached it
    assert source.dropped_ms == pytest.approx(30_000 - 2_000 - 50, abs=1_000)
    played = b"".join(read_n(source, 200))  # 4 s of reads
    assert source.played_ms("item_endless") == pytest.approx(30_000 - source.dropped_ms, abs=1)
    assert not source.is_playing
    # Once the queue drains, audio of the same item still does not come back (no holes in the answer) ...
    source.feed("item_endless", second)
    assert source.buffered_ms == 0
    # ... but the next answer plays.
    source.feed("item_next", second)
    assert source.buffered_ms > 900
    assert np.count_nonzero(np.frombuffer(played, "<i2")) > 0


def test_clear_lets_a_cut_item_play_again_and_the_default_cap_is_a_minute() -> None:
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=0)
    minute = tone_24k(61.0)
    source.feed("item_1", minute)
    source.feed("item_1", tone_24k(5.0))
    assert source.dropped_ms == pytest.approx(5_000)
    assert 60_000 <= source.buffered_ms <= 61_100
    source.clear()
    source.feed("item_1", tone_24k(1.0))
    assert source.buffered_ms > 900


def test_a_cap_below_the_prebuffer_is_refused() -> None:
    with pytest.raises(ValueError, match="max_buffered_ms"):
        PlaybackSource(prebuffer_ms=100, max_buffered_ms=50)


# -- the answer's own format, and the lead-in while the model thinks ------------------------------------------------


def test_a_24k_mono_source_plays_the_answer_as_it_came_in_960_byte_frames() -> None:
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=0, pcm_format=REALTIME)
    answer = tone_24k(0.1)
    source.feed("a", answer[:1001])  # an odd byte waits for the rest of its sample
    source.feed("a", answer[1001:])
    frames = read_n(source, 6)
    assert all(len(frame) == REALTIME_FRAME_BYTES for frame in frames)
    assert b"".join(frames[:5]) == answer  # no resampler: sample for sample
    assert frames[5] is source.silence_frame
    assert source.played_ms("a") == pytest.approx(100)


def test_the_lead_in_runs_while_the_model_thinks_and_adds_no_delay_to_a_later_answer() -> None:
    clock_s = [50.0]
    source = PlaybackSource(prebuffer_ms=60, lead_silence_ms=200, clock=lambda: clock_s[0], pcm_format=REALTIME)
    assert not source.is_active
    source.start_lead_in()  # the session asked for an answer
    assert source.is_active and not source.is_playing  # the sender reads it; turn-taking still hears silence
    for _ in range(15):  # the model thinks for 300 ms: all of it lead silence
        assert source.read() is source.silence_frame
        clock_s[0] += 0.02
    source.feed("a", tone_24k(0.02))  # the first delta: one frame
    frames = read_n(source, 2)
    assert frames[0] is not source.silence_frame  # at the next read: no lead silence left, no start-up buffer
    assert source.played_ms("a") == pytest.approx(20)
    assert not source.is_active  # once played out, the lead-in is over


def test_an_answer_arriving_within_the_lead_in_goes_out_at_the_next_read() -> None:
    """Issue 16: the lead-in runs while the model thinks; if the answer comes sooner, it adds no delay."""
    clock_s = [50.0]
    source = PlaybackSource(prebuffer_ms=60, lead_silence_ms=200, clock=lambda: clock_s[0], pcm_format=REALTIME)
    source.start_lead_in()
    for _ in range(4):  # 80 ms of lead silence already sent
        assert source.read() is source.silence_frame
        clock_s[0] += 0.02
    source.feed("a", tone_24k(0.3))
    frames = read_n(source, 10)
    assert [f is source.silence_frame for f in frames] == [False] * 10  # not the 120 ms left of the lead silence


def test_a_lead_in_with_no_answer_ends_after_its_bound_and_a_barge_in_ends_it_at_once() -> None:
    clock_s = [50.0]
    source = PlaybackSource(lead_silence_ms=200, max_lead_in_ms=1000, clock=lambda: clock_s[0])
    source.start_lead_in()
    clock_s[0] += 0.99
    assert source.is_active
    clock_s[0] += 0.02
    assert not source.is_active  # no answer within the bound: the sender ends the stream
    source.feed("late", tone_24k(0.1))
    assert first_audio_index(read_n(source, 20)) == 10  # the usual lead silence

    source = PlaybackSource(lead_silence_ms=200, clock=lambda: clock_s[0])
    source.start_lead_in()
    assert source.clear() == {} and not source.is_active


def test_no_lead_in_starts_while_audio_plays_or_just_after_it() -> None:
    clock_s = [50.0]
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=200, clock=lambda: clock_s[0])
    source.feed("a", tone_24k(0.3))
    read_n(source, 12)  # 200 ms lead silence, then the answer
    source.start_lead_in()  # playing: nothing to warm up
    read_n(source, 20)
    assert not source.is_playing and not source.is_active
    clock_s[0] += 0.1
    source.start_lead_in()  # 100 ms after the last audio: no lead silence is due, so no lead-in either
    assert not source.is_active
    assert PlaybackSource(lead_silence_ms=0).is_active is False  # no lead silence configured: nothing to start
