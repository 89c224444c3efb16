"""Resampling, both directions: our streaming half-band resamplers vs soxr vs scipy's resample_poly.

Speed is seconds of audio processed per CPU second (higher is better) and its ratio to soxr in the same chunking.
Quality is the SNR against soxr VHQ on a speech recording, and the downsampler's 15 kHz rejection.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr
from scipy.signal import resample_poly

from bench.timing import cpu_seconds
from bot.audio.formats import DISCORD_FRAME_BYTES, REALTIME_FRAME_BYTES
from bot.audio.resample import DiscordToRealtimeResampler, RealtimeToDiscordResampler
from bot.audio.wav import read_wav

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "speech_48k_stereo.wav"
#: Sizes (bytes of 24 kHz mono pcm16) like the Realtime API's audio deltas: uneven, mostly a few thousand bytes.
DELTA_SIZES = (4800, 2400, 7200, 1202, 9600, 3598)
REPEAT_AUDIO = 4  # the speech is looped to about 12 s per run


def _speech_48k_stereo() -> bytes:
    samples, _rate = read_wav(SPEECH)
    looped = np.tile(samples, (REPEAT_AUDIO, 1))
    data: bytes = np.clip(np.rint(looped * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return data


def _chunks(data: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    out, position, index = [], 0, 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        out.append(data[position : position + size])
        position += size
        index += 1
    return out


def _stereo_to_mono(chunk: bytes) -> npt.NDArray[np.int16]:
    stereo = np.frombuffer(chunk, dtype="<i2").reshape(-1, 2).astype(np.int32)
    mono: npt.NDArray[np.int16] = ((stereo[:, 0] + stereo[:, 1]) // 2).astype(np.int16)
    return mono


def _ours(
    factory: type[DiscordToRealtimeResampler] | type[RealtimeToDiscordResampler],
) -> Callable[[list[bytes]], bytes]:
    def run(chunks: list[bytes]) -> bytes:
        resampler = factory()
        return b"".join(resampler.process(c) for c in chunks) + resampler.flush()

    return run


def _soxr_down(quality: str) -> Callable[[list[bytes]], bytes]:
    def run(chunks: list[bytes]) -> bytes:
        stream = soxr.ResampleStream(48_000, 24_000, 1, dtype="int16", quality=quality)
        parts = [stream.resample_chunk(_stereo_to_mono(c)).tobytes() for c in chunks]
        parts.append(stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True).tobytes())
        return b"".join(parts)

    return run


def _soxr_up(quality: str) -> Callable[[list[bytes]], bytes]:
    def run(chunks: list[bytes]) -> bytes:
        stream = soxr.ResampleStream(24_000, 48_000, 1, dtype="int16", quality=quality)
        parts = [np.repeat(stream.resample_chunk(np.frombuffer(c, dtype="<i2")), 2).tobytes() for c in chunks]
        parts.append(np.repeat(stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True), 2).tobytes())
        return b"".join(parts)

    return run


def _scipy_down(chunks: list[bytes]) -> bytes:
    # resample_poly keeps no state between calls: chunked use has edge errors; measured for speed only
    return b"".join(
        np.clip(resample_poly(_stereo_to_mono(c).astype(np.float64), 1, 2), -32768, 32767).astype("<i2").tobytes()
        for c in chunks
    )


def _scipy_up(chunks: list[bytes]) -> bytes:
    return b"".join(
        np.repeat(np.clip(resample_poly(np.frombuffer(c, dtype="<i2").astype(np.float64), 2, 1), -32768, 32767), 2)
        .astype("<i2")
        .tobytes()
        for c in chunks
    )


def _snr_db(reference: npt.NDArray[np.float64], signal: npt.NDArray[np.float64]) -> float:
    n = min(len(reference), len(signal))
    reference, signal = reference[200 : n - 200], signal[200 : n - 200]
    return float(10 * np.log10(np.sum(reference**2) / max(float(np.sum((signal - reference) ** 2)), 1e-20)))


def _mono(data: bytes, channels: int) -> npt.NDArray[np.float64]:
    return np.frombuffer(data, dtype="<i2").astype(np.float64).reshape(-1, channels)[:, 0]


def _rejection_15khz_db() -> float:
    t = np.arange(48_000) / 48_000
    tone = np.repeat(20_000 * np.sin(2 * np.pi * 15_000 * t), 2).astype("<i2").tobytes()
    down = _mono(_ours(DiscordToRealtimeResampler)([tone]), 1)
    return float(20 * np.log10(20_000 / np.sqrt(2) / max(float(np.std(down[1000:-1000])), 1e-9)))


def run(repeats: int = 5) -> dict[str, Any]:
    """Measure both directions in 20 ms frames, delta-sized chunks and one shot; returns rows for the report."""
    down_input = _speech_48k_stereo()
    up_input = _ours(DiscordToRealtimeResampler)([down_input])
    audio_s = len(down_input) / (48_000 * 4)
    directions: dict[str, dict[str, Any]] = {
        "48k stereo -> 24k mono": {
            "input": down_input,
            "chunkings": {"20 ms frames": (DISCORD_FRAME_BYTES,), "one shot": (len(down_input),)},
            "impls": {
                "ours": _ours(DiscordToRealtimeResampler),
                "soxr HQ": _soxr_down("HQ"),
                "soxr VHQ": _soxr_down("VHQ"),
                "scipy resample_poly": _scipy_down,
            },
            "reference": lambda: soxr.resample(_mono(down_input, 2), 48_000, 24_000, quality="VHQ"),
            "channels": 1,
        },
        "24k mono -> 48k stereo": {
            "input": up_input,
            "chunkings": {
                "20 ms frames": (REALTIME_FRAME_BYTES,),
                "Realtime deltas": DELTA_SIZES,
                "one shot": (len(up_input),),
            },
            "impls": {
                "ours": _ours(RealtimeToDiscordResampler),
                "soxr HQ": _soxr_up("HQ"),
                "soxr VHQ": _soxr_up("VHQ"),
                "scipy resample_poly": _scipy_up,
            },
            "reference": lambda: soxr.resample(_mono(up_input, 1), 24_000, 48_000, quality="VHQ"),
            "channels": 2,
        },
    }
    rows: list[dict[str, Any]] = []
    for direction, spec in directions.items():
        reference = spec["reference"]()
        for chunking, sizes in spec["chunkings"].items():
            chunks = _chunks(spec["input"], sizes)
            speeds: dict[str, float] = {}
            for name, impl in spec["impls"].items():
                seconds = cpu_seconds(functools.partial(impl, chunks), repeats)
                speeds[name] = audio_s / max(seconds, 1e-9)
                snr = _snr_db(reference, _mono(impl(chunks), spec["channels"]))
                rows.append(
                    {
                        "direction": direction,
                        "chunking": chunking,
                        "impl": name,
                        "audio_s_per_cpu_s": round(speeds[name], 1),
                        "us_per_20ms": round(20_000 / speeds[name], 2),
                        "snr_vs_soxr_vhq_db": round(snr, 1),
                    }
                )
            for row in rows:
                if row["direction"] == direction and row["chunking"] == chunking:
                    row["speed_vs_soxr_hq"] = round(speeds[row["impl"]] / speeds["soxr HQ"], 2)
    return {"audio_seconds": round(audio_s, 2), "rows": rows, "rejection_15khz_db": round(_rejection_15khz_db(), 1)}


def iter_markdown(result: dict[str, Any]) -> Iterator[str]:
    yield "## 1. Resampling"
    yield ""
    yield (
        f"{result['audio_seconds']} s of speech per run, best of 5 CPU-time runs. Speed ratio is against soxr HQ in "
        "the same chunking (>1 = faster). scipy's resample_poly keeps no state between calls, so its chunked SNR "
        "shows the edge errors of stateless chunking."
    )
    yield ""
    yield (
        "| direction | chunking | implementation | audio s / CPU s | µs per 20 ms | vs soxr HQ | SNR vs soxr VHQ (dB) |"
    )
    yield "| --- | --- | --- | ---: | ---: | ---: | ---: |"
    for row in result["rows"]:
        yield (
            f"| {row['direction']} | {row['chunking']} | {row['impl']} | {row['audio_s_per_cpu_s']} | "
            f"{row['us_per_20ms']} | {row['speed_vs_soxr_hq']} | {row['snr_vs_soxr_vhq_db']} |"
        )
    yield ""
    yield f"Downsampler rejection of a 15 kHz tone: **{result['rejection_15khz_db']} dB** (target ≥ 60 dB)."
