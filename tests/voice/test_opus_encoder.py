"""The bot's Opus encoder: discord.py's settings at a lower complexity, checked against discord.py and libopus."""

from __future__ import annotations

import ctypes

import discord.opus
import numpy as np
import pytest

from bot.voice.libopus import bind_libopus, bind_libopus_holding_gil
from bot.voice.opus_encoder import (
    DISCORD_48K_STEREO,
    NATIVE_24K_MONO,
    OpusEncodeError,
    OpusEncoder,
    answer_encoder,
    encoder_settings,
)
from tests.voice.packets import aligned_snr_db, frames_of, mono, speech_48k_stereo

DISCORDPY_BITRATE_BPS = 128 * 1024  # what discord.py's Encoder(bitrate=128) sets


def encode_all(encoder: object, frames: list[bytes]) -> list[bytes]:
    return [encoder.encode(frame, 960) for frame in frames]  # type: ignore[attr-defined]


def decode_all(packets: list[bytes]) -> bytes:
    decoder = discord.opus.Decoder()  # type: ignore[no-untyped-call]
    return b"".join(decoder.decode(packet, fec=False) for packet in packets)


@pytest.fixture(scope="module")
def speech_frames() -> list[bytes]:
    return frames_of(speech_48k_stereo())[:150]  # 3 s


def lib() -> ctypes.CDLL:
    bound = bind_libopus()
    assert bound is not None, "libopus is installed here (CI installs libopus0)"
    return bound


def test_at_full_complexity_it_encodes_exactly_as_discordpy_does(speech_frames: list[bytes]) -> None:
    ours = OpusEncoder(lib(), complexity=10, bitrate_bps=DISCORDPY_BITRATE_BPS)
    theirs = discord.opus.Encoder()
    assert encode_all(ours, speech_frames) == encode_all(theirs, speech_frames)  # same settings, same packets


def test_the_answer_encoder_keeps_the_gil_and_encodes_exactly_as_the_releasing_binding(
    speech_frames: list[bytes],
) -> None:
    holding = bind_libopus_holding_gil()
    assert isinstance(holding, ctypes.PyDLL)  # PyDLL calls keep the GIL; CDLL calls give it away
    assert not isinstance(lib(), ctypes.PyDLL)
    encoder = answer_encoder(NATIVE_24K_MONO)
    assert isinstance(encoder, OpusEncoder) and encoder._lib is holding

    def encoder_on(library: ctypes.CDLL) -> OpusEncoder:
        return OpusEncoder.with_settings(library, NATIVE_24K_MONO)

    frames = [np.frombuffer(f, "<i2")[0::4].tobytes() for f in speech_frames]  # left channel at 24 kHz: 480 samples
    holding_encoder, releasing_encoder = encoder_on(holding), encoder_on(lib())
    packets = [holding_encoder.encode(f, 480) for f in frames]
    assert len(packets) == len(speech_frames) and all(packets)
    assert packets == [releasing_encoder.encode(f, 480) for f in frames]  # the same library, the same packets


def test_the_complexity_setting_takes_effect_and_keeps_the_quality(speech_frames: list[bytes]) -> None:
    reference = mono(b"".join(speech_frames))
    cheap = encode_all(answer_encoder(), speech_frames)
    full = encode_all(discord.opus.Encoder(), speech_frames)
    assert cheap != full
    cheap_snr, _, _ = aligned_snr_db(reference, mono(decode_all(cheap)))
    full_snr, _, _ = aligned_snr_db(reference, mono(decode_all(full)))
    assert cheap_snr > 15 and abs(cheap_snr - full_snr) < 1.0, (cheap_snr, full_snr)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="complexity must be 0-10"):
        OpusEncoder(lib(), complexity=11)
    encoder = OpusEncoder(lib())
    with pytest.raises(ValueError, match="expected 960 stereo pcm16 samples"):
        encoder.encode(b"\x00" * 100)
    with pytest.raises(OpusEncodeError, match="opus_encoder_ctl"):
        OpusEncoder(lib(), bitrate_bps=-5)
    encoder.close()
    with pytest.raises(OpusEncodeError, match="closed"):
        encoder.encode(bytes(3840))


def test_the_answer_is_encoded_from_24k_mono_as_a_mono_stream_discord_clients_decode() -> None:
    """The default: the answer's own format (no resampler), low-delay CELT. A Discord client decodes the stream at
    48 kHz stereo (discord.py's decoder here) and hears the answer."""
    assert encoder_settings("24k-mono") == NATIVE_24K_MONO and encoder_settings("48k-stereo") == DISCORD_48K_STEREO
    with pytest.raises(ValueError, match="voice encoding"):
        encoder_settings("8k")
    encoder = answer_encoder(NATIVE_24K_MONO)
    t = np.arange(24_000) / 24_000
    answer = np.rint(9000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    frames = [answer[i : i + NATIVE_24K_MONO.frame_bytes] for i in range(0, len(answer), NATIVE_24K_MONO.frame_bytes)]
    packets = encode_all_at(encoder, frames, NATIVE_24K_MONO.frame_samples)
    assert all(packet[0] & 0x04 == 0 for packet in packets)  # the TOC's stereo bit: mono
    assert all(packet[0] >> 3 >= 16 for packet in packets)  # configurations 16-31: CELT only (the low-delay mode)
    reference = np.repeat(np.rint(9000 * np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000)), 2)
    snr, corr, _ = aligned_snr_db(mono(reference.astype("<i2").tobytes()), mono(decode_all(packets)))
    assert corr > 0.99 and snr > 15, (snr, corr)
    with pytest.raises(ValueError, match="expected 480 mono pcm16 samples"):
        encoder.encode(bytes(3840), 480)


def encode_all_at(encoder: object, frames: list[bytes], frame_samples: int) -> list[bytes]:
    return [encoder.encode(frame, frame_samples) for frame in frames]  # type: ignore[attr-defined]
