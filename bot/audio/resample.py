"""Streaming resamplers between Discord's 48 kHz stereo and the Realtime API's 24 kHz mono (pcm16 LE both).

Both directions are polyphase half-band filters (:mod:`bot.audio.halfband`), stateful across calls: feeding a
signal in 20 ms frames, in odd byte counts or in one piece gives the same samples (to within 1 LSB), so there are
no clicks at chunk edges. The output is aligned with the input (the filter delay is compensated, like ``soxr``):
the last ``delay_ms`` of output are held back until more input arrives or :meth:`flush` is called.

Each instance is for one stream, used from one thread at a time.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bot.audio.formats import DISCORD, REALTIME, SAMPLE_WIDTH_BYTES
from bot.audio.halfband import HALF_LENGTH, symmetric_branch

_F32 = npt.NDArray[np.float32]
#: What ``process`` accepts: any contiguous bytes-like object holding pcm16 LE.
PcmBuffer = bytes | bytearray | memoryview
_EMPTY = np.zeros(0, dtype=np.float32)
_INT16_MIN, _INT16_MAX = -32768.0, 32767.0


def _to_pcm16(samples: _F32) -> bytes:
    """Round and saturate float samples (in int16 units) to pcm16 LE bytes."""
    return np.clip(np.rint(samples), _INT16_MIN, _INT16_MAX).astype("<i2").tobytes()


class _ByteCarry:
    """Splits a byte stream into whole sample frames, carrying a partial frame over to the next call."""

    __slots__ = ("_frame_bytes", "_rest")

    def __init__(self, frame_bytes: int) -> None:
        self._frame_bytes = frame_bytes
        self._rest = b""

    def take(self, data: PcmBuffer) -> npt.NDArray[np.int16]:
        """The whole frames of carry + ``data`` as int16 (a view valid until the caller changes ``data``)."""
        if self._rest:
            data = self._rest + data
        usable = len(data) - len(data) % self._frame_bytes
        # a copy: ``data`` may be a memoryview or bytearray the caller reuses for the next chunk
        self._rest = bytes(data[usable:])
        return np.frombuffer(data, dtype="<i2", count=usable // SAMPLE_WIDTH_BYTES)

    @property
    def pending_bytes(self) -> int:
        return len(self._rest)

    def clear(self) -> None:
        self._rest = b""


class DiscordToRealtimeResampler:
    """48 kHz stereo pcm16 -> 24 kHz mono pcm16: average the channels, half-band low-pass, keep every other sample."""

    #: Output lags input by this much until flushed (the filter's look-ahead).
    delay_ms = HALF_LENGTH * 1000 / DISCORD.sample_rate

    def __init__(self) -> None:
        self._branch = symmetric_branch()
        self._carry = _ByteCarry(DISCORD.bytes_per_sample_frame)
        self.reset()

    def reset(self) -> None:
        """Forget all state: the next call starts a new stream."""
        self._carry.clear()
        # The buffer starts at input index 2 * next_output - K; before the stream began, the signal is silence.
        self._buffer: _F32 = np.zeros(HALF_LENGTH, dtype=np.float32)
        self._inputs = 0  # mono 48 kHz samples received
        self._outputs = 0  # 24 kHz samples emitted

    def process(self, pcm16: PcmBuffer) -> bytes:
        """Feed any number of bytes (bytes, bytearray or memoryview) of 48 kHz stereo pcm16.

        Returns:
            The 24 kHz mono pcm16 now computable; a trailing partial frame is kept for the next call.
        """
        stereo = self._carry.take(pcm16).astype(np.float32).reshape(-1, 2)
        if len(stereo) == 0:
            return b""
        mono = (stereo[:, 0] + stereo[:, 1]) * np.float32(0.5)
        self._inputs += len(mono)
        return _to_pcm16(self._run(mono, limit=None))

    def flush(self) -> bytes:
        """Emit the held-back tail (as if silence followed) and start a new stream. A partial frame is dropped."""
        wanted = (self._inputs + 1) // 2 - self._outputs
        tail = self._run(np.zeros(HALF_LENGTH + 1, dtype=np.float32), limit=wanted)
        self.reset()
        return _to_pcm16(tail)

    def _run(self, mono: _F32, limit: int | None) -> _F32:
        buffer = np.concatenate((self._buffer, mono))
        count = max(0, (len(buffer) - 1 - 2 * HALF_LENGTH) // 2 + 1)
        if limit is not None:
            count = min(count, limit)
        if count == 0:
            self._buffer = buffer
            return _EMPTY
        span = 2 * (count - 1) + 2 * HALF_LENGTH + 1
        odd_phase = buffer[0:span:2]
        centre = buffer[HALF_LENGTH : HALF_LENGTH + 2 * count : 2]
        out = np.convolve(odd_phase, self._branch, mode="valid") + np.float32(0.5) * centre
        self._buffer = buffer[2 * count :]
        self._outputs += count
        return out.astype(np.float32, copy=False)


class RealtimeToDiscordResampler:
    """24 kHz mono pcm16 -> 48 kHz stereo pcm16: half-band interpolation by 2, the same signal on both channels."""

    _HALF_BRANCH = (HALF_LENGTH + 1) // 2  # J: taps on each side of an interpolated sample
    #: Output lags input by this much until flushed (the filter's look-ahead).
    delay_ms = _HALF_BRANCH * 1000 / REALTIME.sample_rate

    def __init__(self) -> None:
        self._branch = symmetric_branch() * np.float32(2.0)
        self._carry = _ByteCarry(REALTIME.bytes_per_sample_frame)
        self.reset()

    def reset(self) -> None:
        """Forget all state: the next call starts a new stream."""
        self._carry.clear()
        # The buffer starts at input index next_output - J + 1; before the stream began, the signal is silence.
        self._buffer: _F32 = np.zeros(self._HALF_BRANCH - 1, dtype=np.float32)
        self._inputs = 0
        self._outputs = 0  # input-rate positions emitted (each gives two 48 kHz samples)

    def process(self, pcm16: PcmBuffer) -> bytes:
        """Feed any number of bytes (bytes, bytearray or memoryview) of 24 kHz mono pcm16.

        Returns:
            The 48 kHz stereo pcm16 now computable; a trailing odd byte is kept for the next call.
        """
        mono = self._carry.take(pcm16).astype(np.float32)
        if len(mono) == 0:
            return b""
        self._inputs += len(mono)
        return self._stereo(self._run(mono, limit=None))

    def flush(self) -> bytes:
        """Emit the held-back tail (as if silence followed) and start a new stream. A partial sample is dropped."""
        wanted = self._inputs - self._outputs
        tail = self._run(np.zeros(self._HALF_BRANCH, dtype=np.float32), limit=wanted)
        self.reset()
        return self._stereo(tail)

    def _run(self, mono: _F32, limit: int | None) -> _F32:
        buffer = np.concatenate((self._buffer, mono))
        count = max(0, len(buffer) - 2 * self._HALF_BRANCH + 1)
        if limit is not None:
            count = min(count, limit)
        if count == 0:
            self._buffer = buffer
            return _EMPTY
        interpolated = np.convolve(buffer[: count + 2 * self._HALF_BRANCH - 1], self._branch, mode="valid")
        out = np.empty(2 * count, dtype=np.float32)
        out[0::2] = buffer[self._HALF_BRANCH - 1 : self._HALF_BRANCH - 1 + count]
        out[1::2] = interpolated
        self._buffer = buffer[count:]
        self._outputs += count
        return out

    @staticmethod
    def _stereo(mono_48k: _F32) -> bytes:
        return _to_pcm16(np.repeat(mono_48k, 2))
