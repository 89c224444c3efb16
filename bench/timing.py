"""Measuring CPU time: best of several repeats of a callable, with the machine's description."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def cpu_seconds(work: Callable[[], object], repeats: int = 5) -> float:
    """The least process CPU time of ``repeats`` runs of ``work`` (the least is the least disturbed)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best


def machine() -> dict[str, str | int]:
    """CPU model, core count and Python version, for the results table."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count() or 0, "python": platform.python_version()}


@dataclass(frozen=True, slots=True)
class Options:
    """What the command line asks of every benchmark."""

    repeats: int = 5
    #: Tiny runs that check a benchmark works and reports sane figures (for the tests), not its speed.
    quick: bool = False
    #: Concurrent conversations for the load benchmark (None: its default levels).
    load_levels: tuple[int, ...] | None = None
    #: Measured seconds per load level (None: its default).
    load_seconds: float | None = None
    #: Bot processes (shards) the load benchmarks share each level's conversations over (None: their default).
    load_processes: int | None = None


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (``fraction`` in [0, 1]); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]
