"""Latency figures kept per session: the last N samples of a measurement and their percentiles."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Percentiles:
    count: int
    p50_ms: float
    p95_ms: float


class LatencyWindow:
    """The most recent ``size`` samples (milliseconds) of one measurement."""

    def __init__(self, size: int = 200) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, value_ms: float) -> None:
        if value_ms >= 0:
            self._samples.append(value_ms)

    def percentiles(self) -> Percentiles | None:
        """p50 and p95 by nearest rank, or None before the first sample."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)

        def rank(p: float) -> float:
            return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]

        return Percentiles(count=len(ordered), p50_ms=rank(0.50), p95_ms=rank(0.95))
