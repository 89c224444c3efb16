"""Resampling, both directions: our streaming half-band resamplers vs soxr vs scipy's resample_poly.

Speed is seconds of audio processed per CPU second (higher is better) and its ratio to soxr in the same chunking.
The speed table's SNR is against soxr VHQ rounded to int16, as before.

Quality (:func:`quality`, issue 16) is measured against soxr VHQ **in float** (no int16 ceiling), for each
resampler streaming in 20 ms frames as the bot does: on speech, on white noise, and on tones across the transition
band (their level after resampling: 0 dB passes, a tone above 12 kHz should vanish: what is left is its alias in the
downsampler, or the image above 12 kHz in the upsampler). Each resampler's streaming delay (how far its output lags
its input, fed in 20 ms frames) is reported beside soxr's. The int16 ceiling (the float reference rounded to
int16) is shown: no int16 output can beat it.
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


#: Tone frequencies for the transition band: the downsampler's input (48 kHz) and the upsampler's (24 kHz).
TONES_DOWN_HZ = (1000, 8000, 10000, 10500, 11000, 11500, 11900, 12100, 12500, 13000, 14000, 16000, 20000)
TONES_UP_HZ = (1000, 8000, 10000, 10500, 11000, 11500, 11900)
_TONE_AMPLITUDE = 16000.0
_QUALITY_EDGE = 2000  # samples left out at both ends (start-up and flush)
FRAME_S = 0.02


def _noise(samples: int) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(16)
    return np.clip(rng.normal(0, 6000, samples), -32768, 32767).round()


def _tone(frequency_hz: float, rate: int, seconds: float = 1.0) -> npt.NDArray[np.float64]:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(_TONE_AMPLITUDE * np.sin(2 * np.pi * frequency_hz * t))


def _down_impls() -> dict[str, Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]]:
    """48 kHz mono (int16 units) -> 24 kHz mono, streamed in 20 ms frames, as float."""

    def ours(mono: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        stereo = np.repeat(mono.astype("<i2"), 2).tobytes()
        return _mono(_ours(DiscordToRealtimeResampler)(_chunks(stereo, (DISCORD_FRAME_BYTES,))), 1)

    def soxr_stream(quality: str) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
        def run(mono: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            stereo = np.repeat(mono.astype("<i2"), 2).tobytes()
            return _mono(_soxr_down(quality)(_chunks(stereo, (DISCORD_FRAME_BYTES,))), 1)

        return run

    return {"ours": ours, "soxr HQ": soxr_stream("HQ"), "soxr VHQ": soxr_stream("VHQ")}


def _soxr_float_stream(rate_in: int, rate_out: int, frame_samples: int) -> Callable[..., npt.NDArray[np.float64]]:
    """soxr HQ streaming in 20 ms frames in float64 (no int16 output): what HQ reaches when nothing is rounded."""

    def run(mono: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float64", quality="HQ")
        parts = [stream.resample_chunk(mono[i : i + frame_samples]) for i in range(0, len(mono), frame_samples)]
        parts.append(stream.resample_chunk(np.zeros(0), last=True))
        out: npt.NDArray[np.float64] = np.concatenate(parts)
        return out

    return run


def _up_impls() -> dict[str, Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]]:
    """24 kHz mono (int16 units) -> 48 kHz (one channel of the stereo output), streamed in 20 ms frames, as float."""

    def wrap(
        impl: Callable[[list[bytes]], bytes],
    ) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
        def run(mono: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            return _mono(impl(_chunks(mono.astype("<i2").tobytes(), (REALTIME_FRAME_BYTES,))), 2)

        return run

    return {
        "ours": wrap(_ours(RealtimeToDiscordResampler)),
        "soxr HQ": wrap(_soxr_up("HQ")),
        "soxr VHQ": wrap(_soxr_up("VHQ")),
    }


def _snr_float_db(reference: npt.NDArray[np.float64], signal: npt.NDArray[np.float64]) -> float:
    n = min(len(reference), len(signal))
    reference, signal = reference[_QUALITY_EDGE : n - _QUALITY_EDGE], signal[_QUALITY_EDGE : n - _QUALITY_EDGE]
    noise = float(np.sum((signal - reference) ** 2))
    return float(10 * np.log10(np.sum(reference**2) / max(noise, 1e-20)))


def _level_db(signal: npt.NDArray[np.float64]) -> float:
    """RMS level relative to the test tone's (0 dB: passed whole; -120 dB, the floor: nothing left)."""
    core = signal[_QUALITY_EDGE:-_QUALITY_EDGE]
    tone_rms = _TONE_AMPLITUDE / np.sqrt(2)
    return float(20 * np.log10(max(float(np.sqrt(np.mean(core**2))), tone_rms * 1e-6) / tone_rms))


def _image_db(signal_48k: npt.NDArray[np.float64]) -> float:
    """Energy above 12 kHz (the upsampler's images) relative to the whole signal's (-120 dB, the floor: none)."""
    core = signal_48k[_QUALITY_EDGE:-_QUALITY_EDGE] * np.hanning(len(signal_48k) - 2 * _QUALITY_EDGE)
    power = np.abs(np.fft.rfft(core)) ** 2
    above = power[np.fft.rfftfreq(len(core), 1 / 48_000) > 12_000].sum()
    return float(10 * np.log10(max(float(above) / float(power.sum()), 1e-12)))


def _stream_delay_ms(impl: Callable[[list[bytes]], bytes], frame_bytes: int, in_rate: int, channels_out: int) -> float:
    """How far the output lags the input when fed 20 ms frames: input time so far minus output time so far, with
    the stream still open (``impl`` does not flush)."""
    frames = 50
    signal = _tone(440, in_rate, frames * FRAME_S)
    data = np.repeat(signal.astype("<i2"), 2 if frame_bytes == DISCORD_FRAME_BYTES else 1).tobytes()
    out_samples = len(impl(_chunks(data, (frame_bytes,)))) // (2 * channels_out)
    out_rate = 48_000 if channels_out == 2 else 24_000
    return round(frames * FRAME_S * 1000 - out_samples / out_rate * 1000, 3)


def quality() -> dict[str, Any]:
    """Quality against soxr VHQ in float, on speech, white noise and tones, and each resampler's streaming delay."""
    speech_48k = _mono(_speech_48k_stereo(), 2)[: 48_000 * 6]
    speech_24k = np.round(soxr.resample(speech_48k, 48_000, 24_000, quality="VHQ"))
    signals = {
        "48k -> 24k": (
            {"speech": speech_48k, "white noise": _noise(48_000 * 4)},
            {**_down_impls(), "soxr HQ float": _soxr_float_stream(48_000, 24_000, 960)},
            (48_000, 24_000),
        ),
        "24k -> 48k": (
            {"speech": speech_24k, "white noise": _noise(24_000 * 4)},
            {**_up_impls(), "soxr HQ float": _soxr_float_stream(24_000, 48_000, 480)},
            (24_000, 48_000),
        ),
    }
    snr_rows: list[dict[str, Any]] = []
    for direction, (inputs, impls, (rate_in, rate_out)) in signals.items():
        for signal_name, signal in inputs.items():
            reference = soxr.resample(signal, rate_in, rate_out, quality="VHQ")  # float64 in, float64 out
            row: dict[str, Any] = {
                "direction": direction,
                "signal": signal_name,
                "int16_ceiling_db": round(_snr_float_db(reference, np.round(reference)), 1),
            }
            for name, impl in impls.items():
                row[name] = round(_snr_float_db(reference, impl(signal)), 1)
            snr_rows.append(row)
    tone_rows: list[dict[str, Any]] = []
    for frequency in TONES_DOWN_HZ:
        tone = _tone(frequency, 48_000)
        levels = {name: round(_level_db(impl(tone)), 1) for name, impl in _down_impls().items()}
        tone_rows.append({"direction": "48k -> 24k", "tone_hz": frequency, "measure": "level dB", **levels})
    for frequency in TONES_UP_HZ:
        tone = _tone(frequency, 24_000)
        images = {name: round(_image_db(impl(tone)), 1) for name, impl in _up_impls().items()}
        tone_rows.append({"direction": "24k -> 48k", "tone_hz": frequency, "measure": "image dB", **images})
    delays = {
        "48k -> 24k": {
            "ours": _stream_delay_ms(_ours_open(DiscordToRealtimeResampler), DISCORD_FRAME_BYTES, 48_000, 1),
            "soxr HQ": _stream_delay_ms(_soxr_open_down("HQ"), DISCORD_FRAME_BYTES, 48_000, 1),
            "soxr VHQ": _stream_delay_ms(_soxr_open_down("VHQ"), DISCORD_FRAME_BYTES, 48_000, 1),
        },
        "24k -> 48k": {
            "ours": _stream_delay_ms(_ours_open(RealtimeToDiscordResampler), REALTIME_FRAME_BYTES, 24_000, 2),
            "soxr HQ": _stream_delay_ms(_soxr_open_up("HQ"), REALTIME_FRAME_BYTES, 24_000, 2),
            "soxr VHQ": _stream_delay_ms(_soxr_open_up("VHQ"), REALTIME_FRAME_BYTES, 24_000, 2),
        },
    }
    return {"snr": snr_rows, "tones": tone_rows, "delay_ms": delays}


def _ours_open(
    factory: type[DiscordToRealtimeResampler] | type[RealtimeToDiscordResampler],
) -> Callable[[list[bytes]], bytes]:
    """Ours without the final flush: what a live stream has put out so far."""

    def run(chunks: list[bytes]) -> bytes:
        resampler = factory()
        return b"".join(resampler.process(c) for c in chunks)

    return run


def _soxr_open_down(quality_name: str) -> Callable[[list[bytes]], bytes]:
    def run(chunks: list[bytes]) -> bytes:
        stream = soxr.ResampleStream(48_000, 24_000, 1, dtype="int16", quality=quality_name)
        return b"".join(stream.resample_chunk(_stereo_to_mono(c)).tobytes() for c in chunks if c)

    return run


def _soxr_open_up(quality_name: str) -> Callable[[list[bytes]], bytes]:
    def run(chunks: list[bytes]) -> bytes:
        stream = soxr.ResampleStream(24_000, 48_000, 1, dtype="int16", quality=quality_name)
        parts = [np.repeat(stream.resample_chunk(np.frombuffer(c, dtype="<i2")), 2).tobytes() for c in chunks if c]
        return b"".join(parts)

    return run


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
    return {
        "audio_seconds": round(audio_s, 2),
        "rows": rows,
        "rejection_15khz_db": round(_rejection_15khz_db(), 1),
        "quality": quality(),
    }


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
    yield from _iter_quality(result["quality"])


def _iter_quality(quality_result: dict[str, Any]) -> Iterator[str]:
    names = ("ours", "soxr HQ", "soxr VHQ")
    yield ""
    yield (
        "Quality against soxr VHQ **in float** (no int16 rounding), every resampler streaming in 20 ms frames with "
        "int16 output, so none can exceed the int16 ceiling (the float reference rounded to int16); and soxr HQ "
        "streaming in float, what it reaches when nothing is rounded. SNR in dB:"
    )
    yield ""
    yield "| direction | signal | ours | soxr HQ | soxr VHQ | int16 ceiling | soxr HQ in float |"
    yield "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    for row in quality_result["snr"]:
        yield (
            f"| {row['direction']} | {row['signal']} | {row['ours']} | {row['soxr HQ']} | {row['soxr VHQ']} "
            f"| {row['int16_ceiling_db']} | {row['soxr HQ float']} |"
        )
    yield ""
    yield (
        "Tones across the transition band. Down: the tone's level after resampling (0 dB = passed whole; above "
        "12 kHz, the output's Nyquist, what is left is an alias and should be far below 0). Up: energy above 12 kHz "
        "(images) relative to the whole output. -120 is the floor (nothing measurable left)."
    )
    yield ""
    yield "| direction | tone Hz | measure | ours | soxr HQ | soxr VHQ |"
    yield "| --- | ---: | --- | ---: | ---: | ---: |"
    for row in quality_result["tones"]:
        cells = " | ".join(str(row[name]) for name in names)
        yield f"| {row['direction']} | {row['tone_hz']} | {row['measure']} | {cells} |"
    yield ""
    yield "Streaming delay (ms by which the output lags the input, fed in 20 ms frames):"
    yield ""
    yield "| direction | ours | soxr HQ | soxr VHQ |"
    yield "| --- | ---: | ---: | ---: |"
    for direction, delays in quality_result["delay_ms"].items():
        yield f"| {direction} | " + " | ".join(f"{delays[name]:g}" for name in names) + " |"
