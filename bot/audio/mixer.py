"""Sum several speakers' PCM frames into one without wrapping around."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mix_pcm16(frames: Sequence[bytes]) -> bytes:
    """Sum equal-length pcm16 LE frames (any channel layout) sample by sample, saturating at the int16 limits.

    Raises:
        ValueError: no frames, frames of different lengths, or an odd byte count.
    """
    if not frames:
        raise ValueError("mix_pcm16 needs at least one frame")
    size = len(frames[0])
    if size % 2:
        raise ValueError(f"a pcm16 frame has an even number of bytes (got {size})")
    if any(len(frame) != size for frame in frames):
        raise ValueError(f"all frames must have the same length (got {sorted({len(f) for f in frames})} bytes)")
    if len(frames) == 1:
        return bytes(frames[0])
    total = np.zeros(size // 2, dtype=np.int32)
    for frame in frames:
        total += np.frombuffer(frame, dtype="<i2")
    return np.clip(total, -32768, 32767).astype("<i2").tobytes()
