"""Measuring CPU time: best of several repeats of a callable, with the machine's description."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable


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
