"""The Opus decoder for what the bot hears: one per speaker, straight into a reused buffer.

``discord.opus.Decoder.decode`` makes a Python list of every sample of every frame (about 1,920 ints per 20 ms) and
asks libopus twice about the packet before decoding it. On the socket thread, with the GIL held, that is half of
its decode cost (bench part 2). :class:`OpusDecoder` decodes into one preallocated buffer and returns its bytes.
The output is identical (tested against discord.py's). :func:`speaker_decoder` falls back to discord.py's decoder
where libopus cannot be bound directly.

Not thread-safe: one decoder per speaker stream, used from one thread (the voice socket thread).
"""

from __future__ import annotations

import ctypes
import functools
import logging
from typing import Literal, Protocol, overload

import discord.opus

from bot.audio.formats import DISCORD, FRAME_MS, REALTIME, PcmFormat
from bot.audio.resample import DiscordToRealtimeResampler
from bot.voice.libopus import MAX_FRAME_SAMPLES, OPUS_OK, OpusCodecError, bind_libopus

_log = logging.getLogger(__name__)


class FrameDecoder(Protocol):
    """What the receiver needs from a decoder (``discord.opus.Decoder`` has it too)."""

    @overload
    def decode(self, data: bytes, *, fec: bool) -> bytes: ...

    @overload
    def decode(self, data: None, *, fec: Literal[False]) -> bytes: ...


class OpusDecodeError(OpusCodecError):
    """libopus could not decode a packet (corrupt, or not Opus)."""


class OpusDecoder:
    """An Opus decoder giving pcm16 LE in ``pcm_format`` (48 kHz stereo by default), with loss concealment and
    in-band FEC. Any Opus stream decodes to any of libopus's rates and channel counts: libopus decodes a 48 kHz
    stereo stream straight to 24 kHz mono, more cheaply than decoding it whole and resampling."""

    def __init__(self, lib: ctypes.CDLL, pcm_format: PcmFormat = DISCORD) -> None:
        self._state: int | None = None
        self._lib = lib
        error = ctypes.c_int(0)
        state = lib.opus_decoder_create(pcm_format.sample_rate, pcm_format.channels, error)
        if error.value != OPUS_OK or not state:
            raise OpusDecodeError(f"opus_decoder_create failed with error {error.value}")
        self._state = state
        self.pcm_format = pcm_format
        self._sample_rate = pcm_format.sample_rate
        self._bytes_per_sample_frame = pcm_format.bytes_per_sample_frame
        self._max_samples = MAX_FRAME_SAMPLES * pcm_format.sample_rate // DISCORD.sample_rate
        self._out = ctypes.create_string_buffer(self._max_samples * self._bytes_per_sample_frame)
        self._last_samples = pcm_format.sample_rate * FRAME_MS // 1000

    def decode(self, data: bytes | None, *, fec: bool = False) -> bytes:
        """Decode one packet. ``None`` (or empty): conceal one lost frame as long as the last one. ``fec=True``:
        rebuild the frame *before* ``data`` from the redundancy ``data`` carries."""
        if self._state is None:
            raise OpusDecodeError("the decoder is closed")
        if not data:
            if fec:
                raise TypeError("FEC needs the packet after the lost one")
            samples = self._lib.opus_decode(self._state, None, 0, self._out, self._last_samples, 0)
        elif fec:
            lost = self._lib.opus_packet_get_nb_samples(data, len(data), self._sample_rate)
            if lost <= 0:
                raise OpusDecodeError(f"not an Opus packet (error {lost})")
            samples = self._lib.opus_decode(self._state, data, len(data), self._out, lost, 1)
        else:
            samples = self._lib.opus_decode(self._state, data, len(data), self._out, self._max_samples, 0)
        if samples < 0:
            raise OpusDecodeError(f"opus_decode failed with error {samples}")
        if samples:
            self._last_samples = samples
        return self._out.raw[: samples * self._bytes_per_sample_frame]

    @property
    def closed(self) -> bool:
        """True once :meth:`close` released the native decoder."""
        return self._state is None

    def close(self) -> None:
        if self._state is not None:
            self._lib.opus_decoder_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()


def speaker_decoder() -> FrameDecoder:
    """A decoder to 48 kHz stereo for one speaker: ours if libopus binds, else discord.py's."""
    lib = bind_libopus()
    if lib is None:
        _warn_fallback()
        decoder: FrameDecoder = discord.opus.Decoder()  # type: ignore[no-untyped-call]
        return decoder
    return OpusDecoder(lib)


def speaker_decoder_24k_mono() -> FrameDecoder:
    """A decoder to 24 kHz mono (the Realtime API's format) for one speaker: ours if libopus binds, else
    discord.py's (48 kHz stereo only) followed by a resampler."""
    lib = bind_libopus()
    if lib is None:
        _warn_fallback()
        return _ResampledDecoder()
    return OpusDecoder(lib, REALTIME)


class _ResampledDecoder:
    """Where libopus cannot be bound directly: discord.py's 48 kHz stereo decoder, then the bot's downsampler to
    24 kHz mono (frames come out a few samples short or long around the filter delay; the mixer carries them)."""

    def __init__(self) -> None:
        self._decoder: FrameDecoder = discord.opus.Decoder()  # type: ignore[no-untyped-call]
        self._down = DiscordToRealtimeResampler()

    def decode(self, data: bytes | None, *, fec: bool = False) -> bytes:
        pcm = self._decoder.decode(None, fec=False) if data is None else self._decoder.decode(data, fec=fec)
        return self._down.process(pcm)


@functools.cache
def _warn_fallback() -> None:
    _log.warning("libopus could not be bound directly; decoding with discord.py's decoder")
