"""Which Opus settings for the bot's voice and for decoding speakers: CPU per second of audio and waveform SNR.

A one-off measurement behind the choices in :mod:`bot.voice.opus_encoder` and :mod:`bot.voice.opus_decoder`
(``bench/FINDINGS.md``, section 5); run it with ``python -m bench.codec_choice``. Not part of ``python -m bench``.

- **Encode**: the speech fixture in the format each setting encodes from (48 kHz stereo as it is; 24 kHz mono
  through the bot's own downsampler, the Realtime API's format), encoded in 20 ms frames, decoded again at that
  format, and compared with what went in (aligned; SNR of the mono mix). CPU is the least of ``--repeats`` runs,
  in milliseconds per second of audio.
- **Decode**: the fixture as a Discord client sends it (48 kHz stereo Opus, 64 kbps) decoded at 48 kHz stereo (then
  resampled to 24 kHz mono, as the bot did) and straight at 24 kHz mono.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import numpy as np

from bench.timing import cpu_seconds
from bot.audio.formats import DISCORD, FRAME_MS, REALTIME, PcmFormat
from bot.audio.resample import DiscordToRealtimeResampler
from bot.voice.libopus import bind_libopus
from bot.voice.opus_decoder import OpusDecoder
from bot.voice.opus_encoder import (
    APPLICATION_AUDIO,
    APPLICATION_RESTRICTED_LOWDELAY,
    EncoderSettings,
    OpusEncoder,
)
from tests.voice.packets import aligned_snr_db, speech_48k_stereo

_APPLICATIONS = {APPLICATION_AUDIO: "audio", APPLICATION_RESTRICTED_LOWDELAY: "low-delay"}
#: The settings compared: discord.py's format at the bot's complexity, then the answer's native format.
CANDIDATES = (
    EncoderSettings(DISCORD, APPLICATION_AUDIO, 128_000, 5),
    EncoderSettings(REALTIME, APPLICATION_AUDIO, 64_000, 5),
    EncoderSettings(REALTIME, APPLICATION_RESTRICTED_LOWDELAY, 64_000, 10),
    EncoderSettings(REALTIME, APPLICATION_RESTRICTED_LOWDELAY, 64_000, 5),
    EncoderSettings(REALTIME, APPLICATION_RESTRICTED_LOWDELAY, 64_000, 3),
    EncoderSettings(REALTIME, APPLICATION_RESTRICTED_LOWDELAY, 64_000, 0),
    EncoderSettings(REALTIME, APPLICATION_RESTRICTED_LOWDELAY, 48_000, 5),
    EncoderSettings(REALTIME, APPLICATION_RESTRICTED_LOWDELAY, 32_000, 5),
)


def _frames(pcm: bytes, pcm_format: PcmFormat) -> list[bytes]:
    size = pcm_format.bytes_for_ms(FRAME_MS)
    return [pcm[i : i + size] for i in range(0, len(pcm) - size + 1, size)]


def _mono(pcm: bytes, channels: int) -> np.ndarray:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples


def _speech_in(pcm_format: PcmFormat, speech_48k: bytes) -> bytes:
    if pcm_format == DISCORD:
        return speech_48k
    down = DiscordToRealtimeResampler()
    return down.process(speech_48k) + down.flush()


def encode_rows(repeats: int) -> Iterator[tuple[str, float, float]]:
    """(setting, CPU ms per second of audio, SNR dB) per candidate."""
    lib = bind_libopus()
    assert lib is not None, "libopus is needed"
    speech_48k = speech_48k_stereo()
    for settings in CANDIDATES:
        pcm_format = settings.pcm_format
        frames = _frames(_speech_in(pcm_format, speech_48k), pcm_format)
        audio_s = len(frames) * FRAME_MS / 1000

        def run(frames: list[bytes] = frames, settings: EncoderSettings = settings) -> list[bytes]:
            encoder = OpusEncoder(
                lib,
                complexity=settings.complexity,
                bitrate_bps=settings.bitrate_bps,
                pcm_format=settings.pcm_format,
                application=settings.application,
            )
            return [encoder.encode(frame, settings.frame_samples) for frame in frames]

        cpu_ms_per_s = cpu_seconds(run, repeats) * 1000 / audio_s
        decoder = OpusDecoder(lib, pcm_format)
        decoded = b"".join(decoder.decode(packet) for packet in run())
        snr_db, _, _ = aligned_snr_db(_mono(b"".join(frames), pcm_format.channels), _mono(decoded, pcm_format.channels))
        name = (
            f"{pcm_format.sample_rate // 1000} kHz {'stereo' if pcm_format.channels == 2 else 'mono'}, "
            f"{_APPLICATIONS[settings.application]}, {settings.bitrate_bps // 1000} kbps, "
            f"complexity {settings.complexity}"
        )
        yield name, cpu_ms_per_s, snr_db


def decode_rows(repeats: int) -> Iterator[tuple[str, float]]:
    """(way, CPU ms per second of audio) for one speaker's 48 kHz stereo stream."""
    lib = bind_libopus()
    assert lib is not None, "libopus is needed"
    frames = _frames(speech_48k_stereo(), DISCORD)
    encoder = OpusEncoder(lib, bitrate_bps=64_000)
    packets = [encoder.encode(frame) for frame in frames]
    audio_s = len(frames) * FRAME_MS / 1000

    def at_48k_then_resample() -> None:
        decoder, down = OpusDecoder(lib, DISCORD), DiscordToRealtimeResampler()
        for packet in packets:
            down.process(decoder.decode(packet))

    def at_48k() -> None:
        decoder = OpusDecoder(lib, DISCORD)
        for packet in packets:
            decoder.decode(packet)

    def at_24k_mono() -> None:
        decoder = OpusDecoder(lib, REALTIME)
        for packet in packets:
            decoder.decode(packet)

    for name, work in (
        ("decode at 48 kHz stereo", at_48k),
        ("decode at 48 kHz stereo + resample to 24 kHz mono (before)", at_48k_then_resample),
        ("decode at 24 kHz mono (now)", at_24k_mono),
    ):
        yield name, cpu_seconds(work, repeats) * 1000 / audio_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    print("| encoder setting | CPU ms/s | SNR |\n| --- | --- | --- |")
    for name, cpu_ms, snr_db in encode_rows(repeats):
        print(f"| {name} | {cpu_ms:.1f} | {snr_db:.1f} dB |")
    print("\n| speaker decoding | CPU ms/s |\n| --- | --- |")
    for name, cpu_ms in decode_rows(repeats):
        print(f"| {name} | {cpu_ms:.1f} |")


if __name__ == "__main__":
    main()
