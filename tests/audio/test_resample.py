"""The streaming resamplers: chunk-independence, quality, and agreement with soxr on real speech."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import soxr

from bot.audio.formats import DISCORD_FRAME_BYTES, REALTIME_FRAME_BYTES
from bot.audio.resample import DiscordToRealtimeResampler, RealtimeToDiscordResampler
from tests.audio.conftest import as_array, pcm16, snr_db, tone

Resampler = DiscordToRealtimeResampler | RealtimeToDiscordResampler
EDGE = 2000  # samples ignored at each end when measuring levels


def one_shot(resampler: Resampler, data: bytes) -> bytes:
    return resampler.process(data) + resampler.flush()


def chunked(resampler: Resampler, data: bytes, sizes: Iterator[int]) -> bytes:
    out, position = [], 0
    while position < len(data):
        size = next(sizes)
        out.append(resampler.process(data[position : position + size]))
        position += size
    out.append(resampler.flush())
    return b"".join(out)


def fixed(size: int) -> Iterator[int]:
    while True:
        yield size


def random_sizes(seed: int, high: int) -> Iterator[int]:
    rng = np.random.default_rng(seed)
    while True:
        yield int(rng.integers(1, high))


CHUNKINGS: dict[str, Callable[[int], Iterator[int]]] = {
    "20ms-frames": fixed,
    "1-byte": lambda _frame: fixed(1),
    "7-bytes": lambda _frame: fixed(7),
    "4801-bytes": lambda _frame: fixed(4801),
    "random": lambda frame: random_sizes(7, 3 * frame),
}


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_downsampler_output_does_not_depend_on_chunking(speech_48k_stereo: bytes, chunking: str) -> None:
    data = speech_48k_stereo[: 48_000 * 4] if chunking == "1-byte" else speech_48k_stereo
    whole = one_shot(DiscordToRealtimeResampler(), data)
    pieces = chunked(DiscordToRealtimeResampler(), data, CHUNKINGS[chunking](DISCORD_FRAME_BYTES))
    assert len(whole) == len(data) // 4 // 2 * 2
    assert len(pieces) == len(whole)
    assert np.max(np.abs(as_array(pieces) - as_array(whole))) <= 1


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_upsampler_output_does_not_depend_on_chunking(speech_48k_stereo: bytes, chunking: str) -> None:
    mono_24k = one_shot(DiscordToRealtimeResampler(), speech_48k_stereo)
    data = mono_24k[: 24_000 * 2] if chunking == "1-byte" else mono_24k
    whole = one_shot(RealtimeToDiscordResampler(), data)
    pieces = chunked(RealtimeToDiscordResampler(), data, CHUNKINGS[chunking](REALTIME_FRAME_BYTES))
    assert len(whole) == len(data) * 4
    assert len(pieces) == len(whole)
    assert np.max(np.abs(as_array(pieces) - as_array(whole))) <= 1


def test_no_clicks_at_frame_edges_when_upsampling() -> None:
    signal = tone(440.0, 1.0, 24_000)
    whole = as_array(one_shot(RealtimeToDiscordResampler(), pcm16(signal)), channels=2)[:, 0]
    framed = as_array(chunked(RealtimeToDiscordResampler(), pcm16(signal), fixed(REALTIME_FRAME_BYTES)), 2)[:, 0]
    assert len(framed) == len(whole)
    assert np.max(np.abs(np.diff(framed))) <= np.max(np.abs(np.diff(whole))) + 1


def test_no_clicks_at_frame_edges_when_downsampling() -> None:
    signal = pcm16(tone(440.0, 1.0, 48_000), channels=2)
    whole = as_array(one_shot(DiscordToRealtimeResampler(), signal))
    framed = as_array(chunked(DiscordToRealtimeResampler(), signal, fixed(DISCORD_FRAME_BYTES)))
    assert len(framed) == len(whole)
    assert np.max(np.abs(np.diff(framed))) <= np.max(np.abs(np.diff(whole))) + 1


def test_a_1khz_tone_keeps_its_level_through_down_and_up() -> None:
    signal = tone(1000.0, 1.0, 48_000)
    down = one_shot(DiscordToRealtimeResampler(), pcm16(signal, channels=2))
    up = as_array(one_shot(RealtimeToDiscordResampler(), down), channels=2)
    assert up.shape == (48_000, 2)
    assert np.array_equal(up[:, 0], up[:, 1])
    level_db = 20 * np.log10(np.std(up[EDGE:-EDGE, 0]) / np.std(signal[EDGE:-EDGE]))
    assert abs(level_db) < 0.5
    assert snr_db(signal[EDGE:-EDGE], up[EDGE:-EDGE, 0]) > 40  # aligned: no delay to compensate by hand


def test_a_15khz_tone_is_attenuated_60db_by_the_downsampler() -> None:
    signal = tone(15_000.0, 1.0, 48_000, amplitude=20_000.0)
    down = as_array(one_shot(DiscordToRealtimeResampler(), pcm16(signal, channels=2)))
    attenuation_db = 20 * np.log10(np.std(signal[EDGE:-EDGE]) / max(float(np.std(down[EDGE // 2 : -EDGE // 2])), 1e-9))
    assert attenuation_db >= 60


def test_stereo_is_averaged_to_mono() -> None:
    left = tone(500.0, 0.5, 48_000)
    stereo = np.column_stack([left, np.zeros_like(left)]).ravel()
    down = as_array(one_shot(DiscordToRealtimeResampler(), pcm16(stereo)))
    assert np.std(down[500:-500]) == pytest.approx(np.std(left) / 2, rel=0.01)


def test_downsampler_is_within_40db_of_soxr_vhq_on_speech(speech_48k_stereo: bytes) -> None:
    stereo = as_array(speech_48k_stereo, channels=2)
    reference = soxr.resample(stereo.mean(axis=1), 48_000, 24_000, quality="VHQ")
    ours = as_array(one_shot(DiscordToRealtimeResampler(), speech_48k_stereo))
    assert len(ours) == len(reference)
    assert snr_db(reference[100:-100], ours[100:-100]) >= 40


def test_upsampler_is_within_40db_of_soxr_vhq_on_speech(speech_48k_stereo: bytes) -> None:
    mono_24k = np.rint(soxr.resample(as_array(speech_48k_stereo, channels=2).mean(axis=1), 48_000, 24_000, "VHQ"))
    reference = soxr.resample(mono_24k, 24_000, 48_000, quality="VHQ")
    ours = as_array(one_shot(RealtimeToDiscordResampler(), pcm16(mono_24k)), channels=2)
    assert len(ours) == len(reference)
    assert snr_db(reference[200:-200], ours[200:-200, 0]) >= 40
    assert snr_db(reference[200:-200], ours[200:-200, 1]) >= 40


def test_loud_input_saturates_instead_of_wrapping() -> None:
    square = np.where(np.arange(4800) % 96 < 48, 32767.0, -32768.0)
    up = as_array(one_shot(RealtimeToDiscordResampler(), pcm16(square)), channels=2)
    # the interpolation overshoots a full-scale square wave (Gibbs); without saturation it would wrap to the far sign
    assert up.max() == 32767 and up.min() == -32768
    periods = up[:, 0].reshape(-1, 192)  # 96 samples at 24 kHz are 192 at 48 kHz
    assert (periods[:, 20:76] > 30_000).all() and (periods[:, 116:172] < -30_000).all()


def test_partial_frames_are_carried_and_reset_forgets_them() -> None:
    resampler = DiscordToRealtimeResampler()
    frame = pcm16(tone(300.0, 0.02, 48_000), channels=2)
    assert resampler.process(frame[:3]) == b""
    resampler.reset()
    fresh = DiscordToRealtimeResampler()
    assert resampler.process(frame) == fresh.process(frame)
    assert 0 < DiscordToRealtimeResampler.delay_ms < 2 and 0 < RealtimeToDiscordResampler.delay_ms < 2


def test_upsampler_images_are_attenuated_60db() -> None:
    signal = tone(5_000.0, 1.0, 24_000, amplitude=20_000.0)
    up = as_array(one_shot(RealtimeToDiscordResampler(), pcm16(signal)), channels=2)[EDGE:-EDGE, 0]
    spectrum = np.abs(np.fft.rfft(up * np.hanning(len(up))))
    frequencies_hz = np.fft.rfftfreq(len(up), 1 / 48_000)
    wanted = spectrum[np.abs(frequencies_hz - 5_000) < 50].max()
    image = spectrum[np.abs(frequencies_hz - 19_000) < 50].max()  # 24 kHz - 5 kHz: what zero-stuffing leaves
    assert 20 * np.log10(wanted / image) >= 60


@pytest.mark.parametrize(
    ("resampler", "input_rate", "input_channels", "output_rate", "output_channels"),
    [(DiscordToRealtimeResampler, 48_000, 2, 24_000, 1), (RealtimeToDiscordResampler, 24_000, 1, 48_000, 2)],
)
def test_delay_ms_is_the_audio_held_back_until_flush(
    resampler: type[Resampler], input_rate: int, input_channels: int, output_rate: int, output_channels: int
) -> None:
    instance = resampler()
    frame = pcm16(tone(300.0, 0.02, input_rate), channels=input_channels)
    emitted_bytes = sum(len(instance.process(frame)) for _ in range(10))
    held_back_bytes = len(instance.flush())
    output_frame_bytes = 2 * output_channels
    assert emitted_bytes + held_back_bytes == 10 * 20 * output_rate // 1000 * output_frame_bytes
    held_back_ms = held_back_bytes / output_frame_bytes * 1000 / output_rate
    assert held_back_ms > 0
    assert abs(held_back_ms - instance.delay_ms) <= 1000 / output_rate  # within one output sample


@pytest.mark.parametrize("resampler", [DiscordToRealtimeResampler, RealtimeToDiscordResampler])
def test_flush_starts_a_new_stream(resampler: type[Resampler], speech_48k_stereo: bytes) -> None:
    data = speech_48k_stereo[: DISCORD_FRAME_BYTES * 5]
    used = resampler()
    used.process(data[:1001])
    used.flush()
    assert one_shot(used, data) == one_shot(resampler(), data)


@pytest.mark.parametrize("resampler", [DiscordToRealtimeResampler, RealtimeToDiscordResampler])
def test_a_reused_caller_buffer_does_not_change_the_carried_partial_frame(
    resampler: type[Resampler], speech_48k_stereo: bytes
) -> None:
    data = speech_48k_stereo[: DISCORD_FRAME_BYTES * 2]
    expected = one_shot(resampler(), data)
    instance, buffer, out = resampler(), bytearray(1001), []
    for position in range(0, len(data), 1001):
        piece = data[position : position + 1001]
        buffer[: len(piece)] = piece
        out.append(instance.process(memoryview(buffer)[: len(piece)]))  # 1001 bytes: always a partial frame
    out.append(instance.flush())
    assert b"".join(out) == expected


@pytest.mark.parametrize("stereo_frames", [1, 2, 3, 41, 42, 83, 1001])
def test_output_length_matches_soxr_for_any_input_length(stereo_frames: int) -> None:
    samples = np.random.default_rng(stereo_frames).integers(-1000, 1000, size=(stereo_frames, 2)).astype("<i2")
    down = one_shot(DiscordToRealtimeResampler(), samples.tobytes())
    assert len(down) // 2 == len(soxr.resample(samples.mean(axis=1), 48_000, 24_000, quality="VHQ"))
    up = one_shot(RealtimeToDiscordResampler(), samples[:, 0].tobytes())
    assert len(up) // 4 == len(soxr.resample(samples[:, 0].astype(np.float64), 24_000, 48_000, quality="VHQ"))
