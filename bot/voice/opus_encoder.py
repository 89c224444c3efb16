"""The Opus encoder for the bot's voice: discord.py's settings, at a lower encoder complexity.

libopus defaults to complexity 9-10, which discord.py's ``Encoder`` keeps and does not let callers change. The
encoder is the largest CPU cost per conversation (bench part 2). Complexity 5 halves it, with the same SNR on the
speech fixture at 128 kbps (20.1 dB both, one-off measurement recorded in ``bench/FINDINGS.md``). At this bitrate the
analysis that the higher complexities add buys nothing audible, and the answer audio has nothing above 12 kHz anyway.

:func:`answer_encoder` uses the direct binding in :mod:`bot.voice.libopus`, loaded so that a call keeps the GIL
(``bind_libopus_holding_gil``: the one sender thread encodes every guild's answer, and must not give the GIL away
once per frame). Where libopus cannot be bound (e.g.
Windows, where discord.py ships its own DLL), it falls back to ``discord.opus.Encoder`` at its default complexity,
and logs that once. Either way the result has discord.py's ``encode(pcm, frame_size)``.

Not thread-safe: one encoder per stream, used from one thread at a time.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from dataclasses import dataclass
from typing import Protocol

import discord.opus

from bot.audio.formats import DISCORD, DISCORD_FRAME_SAMPLES, FRAME_MS, REALTIME, PcmFormat
from bot.voice.libopus import MAX_PACKET_BYTES, OPUS_OK, OpusCodecError, bind_libopus_holding_gil

_log = logging.getLogger(__name__)

DEFAULT_COMPLEXITY = 5
DEFAULT_BITRATE_BPS = 128_000  # VoiceClient.play asks for 128 kbps (discord.py passes 128 × 1024 to libopus)
DEFAULT_EXPECTED_LOSS_PERCENT = 15  # VoiceClient.play's expected_packet_loss=0.15
#: libopus applications: ``AUDIO`` (discord.py's), and ``RESTRICTED_LOWDELAY`` (CELT only, 2.5 ms less look-ahead
#: and no speech/music analysis: cheaper, and at these bitrates the encoder would pick CELT anyway).
APPLICATION_AUDIO = 2049
APPLICATION_RESTRICTED_LOWDELAY = 2051
_OPUS_SET_BITRATE = 4002
_OPUS_SET_BANDWIDTH = 4008
_OPUS_SET_COMPLEXITY = 4010
_OPUS_SET_INBAND_FEC = 4012
_OPUS_SET_PACKET_LOSS_PERC = 4014
_OPUS_SET_SIGNAL = 4024
_OPUS_BANDWIDTH_FULLBAND = 1105
_OPUS_AUTO = -1000


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """What the bot's voice is encoded from and how: the PCM it takes and libopus's application, bitrate and
    complexity. Opus packets carry their own channel count and Discord's RTP clock is 48 kHz whatever the input
    rate, so both formats below make a valid Discord voice stream."""

    pcm_format: PcmFormat
    application: int
    bitrate_bps: int
    complexity: int

    @property
    def frame_samples(self) -> int:
        """Samples per channel in one 20 ms frame."""
        return self.pcm_format.sample_rate * FRAME_MS // 1000

    @property
    def frame_bytes(self) -> int:
        return self.pcm_format.bytes_for_ms(FRAME_MS)


#: The answer in the Realtime API's own format (no resampler), low-delay CELT at 64 kbps: a quarter of the CPU of
#: 48 kHz stereo at 128 kbps, with the same waveform SNR on the speech fixture (``bench/FINDINGS.md``, section 5).
NATIVE_24K_MONO = EncoderSettings(REALTIME, APPLICATION_RESTRICTED_LOWDELAY, 64_000, DEFAULT_COMPLEXITY)
#: discord.py's format and settings (48 kHz stereo, 128 kbps, application audio) at complexity 5: the setting to
#: fall back to should a client mishandle a mono stream.
DISCORD_48K_STEREO = EncoderSettings(DISCORD, APPLICATION_AUDIO, DEFAULT_BITRATE_BPS, DEFAULT_COMPLEXITY)


def encoder_settings(voice_encoding: str) -> EncoderSettings:
    """The settings for a ``VOICE_ENCODING`` value: ``24k-mono`` or ``48k-stereo``."""
    choices = {"24k-mono": NATIVE_24K_MONO, "48k-stereo": DISCORD_48K_STEREO}
    if voice_encoding not in choices:
        raise ValueError(f"voice encoding must be one of {', '.join(choices)}, got {voice_encoding!r}")
    return choices[voice_encoding]


class FrameEncoder(Protocol):
    """What the playback source needs from an encoder (``discord.opus.Encoder`` has it too)."""

    def encode(self, pcm: bytes, frame_size: int) -> bytes: ...


class OpusEncodeError(OpusCodecError):
    """libopus refused a frame or a setting (its error code is in the message)."""


class OpusEncoder:
    """An Opus encoder for 20 ms frames, configured like ``VoiceClient.play`` plus ``complexity``, for 48 kHz
    stereo by default (``pcm_format`` and ``application`` choose another input format and libopus application)."""

    def __init__(
        self,
        lib: ctypes.CDLL,
        *,
        complexity: int = DEFAULT_COMPLEXITY,
        bitrate_bps: int = DEFAULT_BITRATE_BPS,
        expected_loss_percent: int = DEFAULT_EXPECTED_LOSS_PERCENT,
        pcm_format: PcmFormat = DISCORD,
        application: int = APPLICATION_AUDIO,
    ) -> None:
        self._state: int | None = None
        if not 0 <= complexity <= 10:
            raise ValueError(f"complexity must be 0-10, got {complexity}")
        self._lib = lib
        self._bytes_per_sample_frame = pcm_format.bytes_per_sample_frame
        self._channels = pcm_format.channels
        error = ctypes.c_int(0)
        state = lib.opus_encoder_create(pcm_format.sample_rate, pcm_format.channels, application, error)
        if error.value != OPUS_OK or not state:
            raise OpusEncodeError(f"opus_encoder_create failed with error {error.value}")
        self._state = state
        for request, value in (
            (_OPUS_SET_BITRATE, bitrate_bps),
            (_OPUS_SET_INBAND_FEC, 1),
            (_OPUS_SET_PACKET_LOSS_PERC, expected_loss_percent),
            (_OPUS_SET_BANDWIDTH, _OPUS_BANDWIDTH_FULLBAND),
            (_OPUS_SET_SIGNAL, _OPUS_AUTO),
            (_OPUS_SET_COMPLEXITY, complexity),
        ):
            result = lib.opus_encoder_ctl(state, request, value)
            if result != OPUS_OK:
                self.close()
                raise OpusEncodeError(f"opus_encoder_ctl({request}, {value}) failed with error {result}")
        self._out = ctypes.create_string_buffer(MAX_PACKET_BYTES)

    def encode(self, pcm: bytes, frame_size: int = DISCORD_FRAME_SAMPLES) -> bytes:
        """One frame of pcm16 in the encoder's format (``frame_size`` samples per channel) -> one Opus packet."""
        if self._state is None:
            raise OpusEncodeError("the encoder is closed")
        if len(pcm) != frame_size * self._bytes_per_sample_frame:
            layout = "stereo" if self._channels == 2 else "mono"
            raise ValueError(f"expected {frame_size} {layout} pcm16 samples, got {len(pcm)} bytes")
        size = self._lib.opus_encode(self._state, pcm, frame_size, self._out, MAX_PACKET_BYTES)
        if size < 0:
            raise OpusEncodeError(f"opus_encode failed with error {size}")
        return self._out.raw[:size]

    @classmethod
    def with_settings(cls, lib: ctypes.CDLL, settings: EncoderSettings) -> OpusEncoder:
        """An encoder on ``lib`` (as bound by :mod:`bot.voice.libopus`) with ``settings``."""
        return cls(
            lib,
            complexity=settings.complexity,
            bitrate_bps=settings.bitrate_bps,
            pcm_format=settings.pcm_format,
            application=settings.application,
        )

    def close(self) -> None:
        if self._state is not None:
            self._lib.opus_encoder_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()


def answer_encoder(settings: EncoderSettings = DISCORD_48K_STEREO) -> FrameEncoder:
    """The encoder for the bot's voice: ours with ``settings`` if libopus binds, else discord.py's (48 kHz stereo
    only: its ``Encoder`` takes no other format)."""
    lib = bind_libopus_holding_gil()  # the sender thread encodes: see bind_libopus_holding_gil
    if lib is None:
        if settings.pcm_format != DISCORD:
            raise OpusEncodeError("libopus could not be bound: only 48 kHz stereo can be encoded (discord.py's)")
        _warn_fallback()
        encoder: FrameEncoder = discord.opus.Encoder()
        return encoder
    return OpusEncoder.with_settings(lib, settings)


@functools.cache
def _warn_fallback() -> None:
    _log.warning("libopus could not be bound directly; encoding with discord.py's encoder at its default complexity")
