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

from bot.audio.formats import DISCORD, DISCORD_FRAME_SAMPLES
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
    """A 48 kHz stereo Opus decoder giving pcm16 LE, with loss concealment and in-band FEC."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._state: int | None = None
        self._lib = lib
        error = ctypes.c_int(0)
        state = lib.opus_decoder_create(DISCORD.sample_rate, DISCORD.channels, error)
        if error.value != OPUS_OK or not state:
            raise OpusDecodeError(f"opus_decoder_create failed with error {error.value}")
        self._state = state
        self._bytes_per_sample_frame = DISCORD.bytes_per_sample_frame
        self._out = ctypes.create_string_buffer(MAX_FRAME_SAMPLES * self._bytes_per_sample_frame)
        self._last_samples = DISCORD_FRAME_SAMPLES

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
            lost = self._lib.opus_packet_get_nb_samples(data, len(data), DISCORD.sample_rate)
            if lost <= 0:
                raise OpusDecodeError(f"not an Opus packet (error {lost})")
            samples = self._lib.opus_decode(self._state, data, len(data), self._out, lost, 1)
        else:
            samples = self._lib.opus_decode(self._state, data, len(data), self._out, MAX_FRAME_SAMPLES, 0)
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
    """The decoder for one speaker: ours if libopus binds, else discord.py's."""
    lib = bind_libopus()
    if lib is None:
        _warn_fallback()
        decoder: FrameDecoder = discord.opus.Decoder()  # type: ignore[no-untyped-call]
        return decoder
    return OpusDecoder(lib)


@functools.cache
def _warn_fallback() -> None:
    _log.warning("libopus could not be bound directly; decoding with discord.py's decoder")
