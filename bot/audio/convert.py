"""One-shot conversion of audio at any rate and channel count to what Discord delivers (48 kHz stereo pcm16).

Used to turn a WAV file into a Discord-like stream (``python -m bot simulate``); not a hot path. The resampler is a
polyphase Kaiser-windowed sinc for any rational ratio, processed in blocks to bound memory.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from bot.audio.formats import DISCORD

_log = logging.getLogger(__name__)

_F32 = npt.NDArray[np.float32]
_ZERO_CROSSINGS = 24  # taps per side per phase at the narrower band: sets the transition width
_KAISER_BETA = 9.0
_BLOCK_ELEMENTS = 1 << 21  # gathered input samples per block (outputs x taps x channels): bounds peak memory
_MAX_CHANNELS = 64
#: Largest term of the reduced ratio up/down: the prototype filter has ~48x this many taps (here at most ~50 MB).
MAX_RATIO_TERM = 1 << 17


def _filter_bank(up: int, down: int) -> tuple[npt.NDArray[np.float64], int]:
    """Polyphase filter bank ``(up, taps)`` for resampling by ``up/down``, and the taps' centre offset."""
    cutoff = 0.5 / max(up, down) * 0.94  # in cycles per upsampled sample, just below the lower Nyquist
    half = math.ceil(_ZERO_CROSSINGS * max(up, down) / up) * up
    n = np.arange(-half, half + 1, dtype=np.float64)
    proto = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(len(n), _KAISER_BETA) * up
    taps_per_phase = math.ceil(len(proto) / up)
    padded = np.zeros(taps_per_phase * up)
    padded[: len(proto)] = proto
    # bank[p, k] = proto[p + k * up]: phase p weighs input sample (base - k) for output time base + p/up
    bank = padded.reshape(taps_per_phase, up).T.copy()
    return bank, half


def _as_frames(samples: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``samples`` as float64 of shape ``(n, channels)``, or a ValueError saying what is wrong with them."""
    data = np.asarray(samples, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise ValueError(f"samples must have shape (n,) or (n, channels), got {data.shape}")
    if not 1 <= data.shape[1] <= _MAX_CHANNELS:
        raise ValueError(f"samples must have 1 to {_MAX_CHANNELS} channels, got {data.shape[1]}")
    return data


def _ratio(from_rate: int, to_rate: int) -> tuple[int, int]:
    """The reduced ratio ``(up, down)``; one whose terms exceed ``MAX_RATIO_TERM`` becomes the nearest one within it.

    Odd rates (a prime such as 767,999 Hz, or a corrupt header's 2,147,483,647 Hz) would otherwise need a filter of
    hundreds of MB or more. The nearest bounded fraction differs from the exact ratio by less than 1/MAX_RATIO_TERM
    (under 8 ppm: at most 0.03 s per hour, inaudible); the output length still follows the exact rates.
    """
    g = math.gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    if max(up, down) <= MAX_RATIO_TERM:
        return up, down
    approx = Fraction(to_rate, from_rate).limit_denominator(
        max(1, MAX_RATIO_TERM * from_rate // max(from_rate, to_rate))
    )
    if approx == 0 or max(approx.numerator, approx.denominator) > MAX_RATIO_TERM:
        raise ValueError(f"cannot resample {from_rate} Hz to {to_rate} Hz: more than {MAX_RATIO_TERM}x apart")
    _log.debug("resampling %d -> %d Hz as the ratio %d/%d", from_rate, to_rate, approx.numerator, approx.denominator)
    return approx.numerator, approx.denominator


def resample_float32(samples: npt.ArrayLike, from_rate: int, to_rate: int) -> _F32:
    """Resample ``samples`` of shape ``(n, channels)`` (or ``(n,)``) from ``from_rate`` to ``to_rate`` Hz.

    The output has ``round(n * to_rate / from_rate)`` frames and the same channel layout, aligned with the input.

    Raises:
        ValueError: a rate that is not a positive integer, a ratio above ``MAX_RATIO_TERM`` (either way), or
            samples that are not 1-D or 2-D with 1..64 channels.
    """
    data = _as_frames(samples)
    squeeze = np.ndim(samples) == 1
    for name, rate in (("from_rate", from_rate), ("to_rate", to_rate)):
        if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
            raise ValueError(f"{name} must be a positive integer number of Hz (got {rate!r})")
    if from_rate == to_rate:
        result = data.astype(np.float32)
        return result[:, 0] if squeeze else result
    up, down = _ratio(from_rate, to_rate)
    bank, half = _filter_bank(up, down)
    taps = bank.shape[1]
    count = round(len(data) * to_rate / from_rate)
    # pad so that every index base - k (and the centre offset) stays inside the array
    lead = taps + half // up + 1
    padded = np.concatenate([np.zeros((lead, data.shape[1])), data, np.zeros((lead, data.shape[1]))])
    out = np.empty((count, data.shape[1]), dtype=np.float32)
    block_outputs = max(1, _BLOCK_ELEMENTS // (taps * data.shape[1]))
    for start in range(0, count, block_outputs):
        n = np.arange(start, min(count, start + block_outputs), dtype=np.int64)
        position = n * down + half  # in upsampled samples, shifted so the filter's centre lines up with time 0
        base, phase = position // up, position % up
        index = base[:, None] - np.arange(taps)[None, :] + lead
        out[start : start + len(n)] = np.einsum("nk,nkc->nc", bank[phase], padded[index]).astype(np.float32)
    return out[:, 0] if squeeze else out


def to_discord_pcm16(samples: npt.ArrayLike, sample_rate: int) -> bytes:
    """Float audio in [-1, 1] of shape ``(n, channels)`` at any rate -> 48 kHz stereo pcm16 LE, as Discord delivers.

    Mono is duplicated to both channels; more than two channels are averaged to mono first. Full scale is 32768, the
    scale :func:`bot.audio.wav.read_wav` uses, so 48 kHz stereo pcm16 read from a WAV file comes back unchanged.

    Raises:
        ValueError: as :func:`resample_float32`.
    """
    data = _as_frames(samples)
    if data.shape[1] > 2:
        data = data.mean(axis=1, keepdims=True)
    resampled = resample_float32(data, sample_rate, DISCORD.sample_rate)
    if resampled.shape[1] == 1:
        resampled = np.repeat(resampled, 2, axis=1)
    pcm16: bytes = np.clip(np.rint(resampled * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return pcm16
