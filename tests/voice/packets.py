"""Voice packets made the way Discord makes them: real libopus frames, encrypted by discord.py's own send path."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import discord
import discord.opus
import numpy as np
import numpy.typing as npt

from bot.audio.formats import DISCORD_FRAME_BYTES, DISCORD_FRAME_SAMPLES
from bot.audio.resample import DiscordToRealtimeResampler
from bot.audio.wav import read_wav
from bot.voice.transport_crypto import encrypt_rtpsize

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KEY = bytes(range(32))
OPUS_SILENCE = b"\xf8\xff\xfe"


def speech_48k_stereo() -> bytes:
    """The committed speech recording (espeak-ng), 48 kHz stereo pcm16."""
    samples, rate = read_wav(FIXTURES / "speech_48k_stereo.wav")
    assert rate == 48_000 and samples.shape[1] == 2
    data: bytes = np.clip(np.rint(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return data


def tone_48k_stereo(frequency_hz: float, seconds: float, amplitude: float = 8000.0) -> bytes:
    t = np.arange(int(seconds * 48_000)) / 48_000
    mono = amplitude * np.sin(2 * np.pi * frequency_hz * t)
    return np.clip(np.rint(np.repeat(mono, 2)), -32768, 32767).astype("<i2").tobytes()


def frames_of(pcm16: bytes) -> list[bytes]:
    """Whole 20 ms frames of 48 kHz stereo pcm16 (a partial last frame is zero-padded)."""
    if len(pcm16) % DISCORD_FRAME_BYTES:
        pcm16 += bytes(DISCORD_FRAME_BYTES - len(pcm16) % DISCORD_FRAME_BYTES)
    return [pcm16[i : i + DISCORD_FRAME_BYTES] for i in range(0, len(pcm16), DISCORD_FRAME_BYTES)]


def mono(pcm16: bytes) -> npt.NDArray[np.float64]:
    """The left channel of interleaved stereo pcm16 as floats."""
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float64)[0::2]


def reference_24k(pcm16_48k_stereo: bytes) -> npt.NDArray[np.float64]:
    """What the receiver should hear of a 48 kHz stereo source it decodes at 24 kHz mono: the bot's own
    downsampling of the source, as floats."""
    down = DiscordToRealtimeResampler()
    return samples_24k(down.process(pcm16_48k_stereo) + down.flush())


def samples_24k(pcm16_24k_mono: bytes) -> npt.NDArray[np.float64]:
    """24 kHz mono pcm16 (what the receiver decodes to) as floats."""
    return np.frombuffer(pcm16_24k_mono, dtype="<i2").astype(np.float64)


def best_alignment(reference: npt.NDArray[np.float64], signal: npt.NDArray[np.float64], max_lag: int = 2000) -> int:
    """The lag (samples) at which ``signal`` best matches ``reference`` (signal[n + lag] ~ reference[n])."""
    n = min(len(reference), len(signal)) - max_lag
    scores = [float(np.dot(reference[:n], signal[lag : lag + n])) for lag in range(max_lag)]
    return int(np.argmax(scores))


def aligned_snr_db(reference: npt.NDArray[np.float64], signal: npt.NDArray[np.float64]) -> tuple[float, float, int]:
    """(SNR dB, correlation, lag) of ``signal`` against ``reference`` after alignment."""
    lag = best_alignment(reference, signal)
    n = min(len(reference), len(signal) - lag)
    ref = reference[:n]
    sig = signal[lag : lag + n]
    error = sig - ref
    snr = 10 * np.log10(np.sum(ref**2) / max(np.sum(error**2), 1e-9))
    corr = float(np.corrcoef(ref, sig)[0, 1])
    return float(snr), corr, lag


class _DiscordPyEncryptor:
    """The attributes discord.py's ``VoiceClient._encrypt_aead_xchacha20_poly1305_rtpsize`` reads."""

    def __init__(self, key: bytes, nonce: int = 0) -> None:
        self.secret_key = list(key)
        self._incr_nonce = nonce

    def checked_add(self, attr: str, value: int, limit: int) -> None:
        val = getattr(self, attr)
        setattr(self, attr, 0 if val + value > limit else val + value)


def discordpy_encrypt(header: bytes, payload: bytes, encryptor: _DiscordPyEncryptor) -> bytes:
    """Encrypt with discord.py's own outbound function (called unbound on an object with the fields it uses)."""
    func: Any = discord.VoiceClient._encrypt_aead_xchacha20_poly1305_rtpsize
    result: bytes = func(encryptor, header, payload)
    return result


def rtp_header(sequence: int, timestamp: int, ssrc: int) -> bytes:
    """The 12-byte header discord.py writes (version 2, payload type 0x78)."""
    return struct.pack(">BBHII", 0x80, 0x78, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)


class Speaker:
    """One Discord user sending voice: libopus encodes, discord.py's function encrypts.

    ``extension_body`` adds a 0xBEDE header extension the way Discord clients send one (the preamble in the clear and
    authenticated, the body encrypted), using the mirror encryptor.
    """

    def __init__(self, ssrc: int, key: bytes = KEY, *, sequence: int = 1000, extension_body: bytes = b"") -> None:
        self.ssrc = ssrc
        self.key = key
        self.sequence = sequence
        self.timestamp = 123_456
        self.extension_body = extension_body
        self.encoder = discord.opus.Encoder()
        self._encryptor = _DiscordPyEncryptor(key, nonce=7)

    def opus_frames(self, pcm16: bytes) -> list[bytes]:
        return [self.encoder.encode(frame, DISCORD_FRAME_SAMPLES) for frame in frames_of(pcm16)]

    def packet(self, opus: bytes) -> tuple[int, bytes]:
        """(sequence, datagram) for one Opus frame; advances sequence and timestamp."""
        sequence = self.sequence & 0xFFFF
        header = rtp_header(sequence, self.timestamp, self.ssrc)
        if self.extension_body:
            assert len(self.extension_body) % 4 == 0
            header = bytes([header[0] | 0x10]) + header[1:]
            header += struct.pack(">HH", 0xBEDE, len(self.extension_body) // 4)
            datagram = encrypt_rtpsize(
                header, opus, self.key, self._encryptor._incr_nonce, extension_body=self.extension_body
            )
            self._encryptor._incr_nonce += 1
        else:
            datagram = discordpy_encrypt(header, opus, self._encryptor)
        self.sequence += 1
        self.timestamp += DISCORD_FRAME_SAMPLES
        return sequence, datagram

    def padding_packet(self, padding_bytes: int = 40) -> bytes:
        """A padding-only packet (the RTP P bit set, the payload nothing but padding), as Discord clients send in
        bursts; it takes a sequence number like any other packet."""
        assert 1 <= padding_bytes <= 255
        header = rtp_header(self.sequence, self.timestamp, self.ssrc)
        header = bytes([header[0] | 0x20]) + header[1:]
        datagram = discordpy_encrypt(header, bytes(padding_bytes - 1) + bytes([padding_bytes]), self._encryptor)
        self.sequence += 1
        return datagram

    def packets(self, pcm16: bytes, *, silence_tail: int = 0) -> list[bytes]:
        """Datagrams for all of ``pcm16``, then ``silence_tail`` Opus silence frames."""
        out = [self.packet(opus)[1] for opus in self.opus_frames(pcm16)]
        out += [self.packet(OPUS_SILENCE)[1] for _ in range(silence_tail)]
        return out
