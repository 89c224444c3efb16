from __future__ import annotations

from bot.room.latency import LatencyWindow


def test_percentiles_by_nearest_rank_over_the_recent_window() -> None:
    window = LatencyWindow(size=100)
    assert window.percentiles() is None
    for value in range(1, 201):  # only the last 100 (101..200) are kept
        window.add(float(value))
    window.add(-5.0)  # a clock hiccup is ignored
    stats = window.percentiles()
    assert stats is not None
    assert (stats.count, stats.p50_ms, stats.p95_ms) == (100, 150.0, 195.0)
