"""The soak (``bench/soak.py``): 30 minutes of three speakers through the whole bot, faster than real time, with
flat memory, tasks, threads and file descriptors, and every turn answered.

Marked ``soak``: not in the default run (it takes minutes). Run it with ``pytest -m soak``; ``python -m bench`` runs
the same soak and reports its figures.
"""

from __future__ import annotations

import pytest

from bench import soak
from bench.timing import Options

pytestmark = pytest.mark.soak


def test_thirty_minutes_of_three_speakers_leave_the_bot_flat() -> None:
    result = soak.run(Options())
    assert result["audio_s"] >= 30 * 60
    failed = [name for name, passed in result["checks"].items() if not passed]
    assert failed == [], (failed, result["samples"][0], result["samples"][-1])
    assert result["voice_metrics"].get("internal_error", 0) == 0
