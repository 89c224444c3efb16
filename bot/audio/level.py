"""Signal level in dBFS, for speaker activity and echo guards."""

from __future__ import annotations

import math

import numpy as np

#: What silence (or no audio) measures: a floor instead of minus infinity.
SILENCE_DBFS = -100.0
_FULL_SCALE = 32768.0


def rms_dbfs(pcm16: bytes) -> float:
    """RMS level of pcm16 LE audio (all channels together) relative to full scale; a full-scale sine is -3.01."""
    samples = np.frombuffer(pcm16, dtype="<i2", count=len(pcm16) // 2)
    if samples.size == 0:
        return SILENCE_DBFS
    mean_square = float(np.dot(samples.astype(np.float64), samples.astype(np.float64))) / samples.size
    if mean_square <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(mean_square / (_FULL_SCALE * _FULL_SCALE)))
