"""Bench part 5 runs a spoken turn through the whole bot and reports each segment (no speed is asserted)."""

from __future__ import annotations

from bench import turn_timings
from bench.timing import Options
from bot.room.turn_timing import SEGMENTS


def test_turn_timings_cover_every_segment_of_every_turn() -> None:
    result = turn_timings.run(Options(quick=True))
    assert result["turns"] == turn_timings.QUICK_TURNS
    assert set(result["segments"]) == set(SEGMENTS)
    for segment in result["segments"].values():
        assert segment["count"] == turn_timings.QUICK_TURNS
        assert 0 <= segment["p50_ms"] <= segment["p95_ms"]
    # The stand-in model thinks for a fixed time: the segment that contains it cannot be shorter.
    assert result["segments"]["stopped_to_answer"]["p50_ms"] >= turn_timings.MODEL_THINK_MS
    markdown = "\n".join(turn_timings.iter_markdown(result))
    assert markdown.count("\n| ") == 2 + len(SEGMENTS) and "speech_stopped" in markdown  # header, rule, rows
