"""The bot's Opus decoder gives what discord.py's decoder gives, for packets, losses and FEC, from real libopus."""

from __future__ import annotations

import ctypes

import discord.opus
import pytest

from bot.audio.formats import REALTIME, REALTIME_FRAME_BYTES
from bot.audio.resample import DiscordToRealtimeResampler
from bot.voice.libopus import bind_libopus
from bot.voice.opus_decoder import OpusDecodeError, OpusDecoder, speaker_decoder, speaker_decoder_24k_mono
from tests.voice.packets import aligned_snr_db, frames_of, samples_24k, speech_48k_stereo


def lib() -> ctypes.CDLL:
    bound = bind_libopus()
    assert bound is not None, "libopus is installed here (CI installs libopus0)"
    return bound


@pytest.fixture(scope="module")
def packets() -> list[bytes]:
    encoder = discord.opus.Encoder()  # FEC on, 15% expected loss: as Discord clients send
    return [encoder.encode(frame, 960) for frame in frames_of(speech_48k_stereo())[:100]]


def theirs() -> discord.opus.Decoder:
    return discord.opus.Decoder()  # type: ignore[no-untyped-call]


def test_packets_decode_exactly_as_with_discordpy(packets: list[bytes]) -> None:
    assert isinstance(speaker_decoder(), OpusDecoder)  # what the receiver uses by default, here
    ours, reference = OpusDecoder(lib()), theirs()
    decoded = [ours.decode(p, fec=False) for p in packets]
    assert decoded == [reference.decode(p, fec=False) for p in packets]
    assert {len(frame) for frame in decoded} == {3840} and any(any(frame) for frame in decoded)


def test_losses_are_concealed_and_recovered_exactly_as_with_discordpy(packets: list[bytes]) -> None:
    ours, reference = OpusDecoder(lib()), theirs()
    out_ours: list[bytes] = []
    out_ref: list[bytes] = []
    for index, packet in enumerate(packets):
        if index % 10 == 3:  # lost: rebuilt from the next packet's FEC
            out_ours.append(ours.decode(packets[index + 1], fec=True))
            out_ref.append(reference.decode(packets[index + 1], fec=True))
        elif index % 10 == 7:  # lost, nothing to rebuild from: concealed
            out_ours.append(ours.decode(None, fec=False))
            out_ref.append(reference.decode(None, fec=False))
        else:
            out_ours.append(ours.decode(packet, fec=False))
            out_ref.append(reference.decode(packet, fec=False))
    assert out_ours == out_ref
    assert all(len(frame) == 3840 for frame in out_ours)


def test_a_corrupt_packet_is_a_clear_error_and_the_decoder_goes_on(packets: list[bytes]) -> None:
    decoder = OpusDecoder(lib())
    with pytest.raises(OpusDecodeError, match="opus_decode failed"):
        decoder.decode(b"\xff\xff\xff\xff\xff", fec=False)  # code 3 with an impossible frame count
    with pytest.raises(OpusDecodeError, match="not an Opus packet"):
        decoder.decode(b"\xff\xff\xff\xff\xff", fec=True)
    with pytest.raises(TypeError, match="FEC needs"):
        decoder.decode(None, fec=True)
    assert len(decoder.decode(packets[0], fec=False)) == 3840
    decoder.close()
    with pytest.raises(OpusDecodeError, match="closed"):
        decoder.decode(packets[0], fec=False)


def test_speakers_decode_straight_to_24k_mono_with_concealment_and_fec(packets: list[bytes]) -> None:
    """What the receiver uses by default: libopus decodes the 48 kHz stereo stream at 24 kHz mono, which matches
    decoding it whole and downsampling it (the bot's resampler), frame for frame 480 samples."""
    decoder = speaker_decoder_24k_mono()
    assert isinstance(decoder, OpusDecoder) and decoder.pcm_format == REALTIME
    direct = [decoder.decode(p, fec=False) for p in packets[:50]]
    assert {len(frame) for frame in direct} == {REALTIME_FRAME_BYTES}
    full = OpusDecoder(lib())
    down = DiscordToRealtimeResampler()
    resampled = down.process(b"".join(full.decode(p, fec=False) for p in packets[:50])) + down.flush()
    snr, corr, _ = aligned_snr_db(samples_24k(resampled), samples_24k(b"".join(direct)))
    assert corr > 0.98 and snr > 15, (snr, corr)
    assert len(decoder.decode(None, fec=False)) == REALTIME_FRAME_BYTES  # a lost frame, concealed
    assert len(decoder.decode(packets[51], fec=True)) == REALTIME_FRAME_BYTES  # rebuilt from the next one's FEC
