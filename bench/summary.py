"""The before/after summary at the top of ``RESULTS.md``, computed from this run's own figures.

Every change made for the targets is measured beside what it replaced, in the same run: the load benchmark keeps
discord.py's player designs as variants next to the bot's sender, and part 2 times discord.py's Opus encoder and
decoder next to the bot's. This section puts those pairs side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bench import load

_BEFORE_PLAYER = load.PLAYERS[0]


def _stage(cpu: dict[str, Any], key: str) -> float | None:
    return next((row["ms_per_s"] for row in cpu.get("stages", []) if row.get("key") == key), None)


def _most_met(levels: list[dict[str, Any]], player: str, processes: int) -> int | None:
    met = [
        row["conversations"]
        for row in levels
        if row["player"] == player and row.get("processes", 1) == processes and load.meets_targets(row)
    ]
    return max(met, default=None)


def _count(value: int | None) -> str:
    return "none" if value is None else str(value)


def iter_markdown(results: dict[str, Any]) -> Iterator[str]:
    """The summary lines, or nothing when this run has neither part 2 nor part 3."""
    rows: list[str] = []
    cpu = results.get("cpu_path")
    if cpu:
        for what, before_key, after_key in (
            ("Opus encode, CPU ms per s of answer audio", "encode_discordpy", "encode_bot"),
            ("Opus decode, CPU ms per s per speaker", "decode_discordpy", "decode_bot"),
        ):
            before, after = _stage(cpu, before_key), _stage(cpu, after_key)
            if before is not None and after is not None:
                rows.append(f"| {what} (part 2) | {before} (discord.py) | {after} (the bot's) |")
    levels = (results.get("load") or {}).get("levels", [])
    if levels:
        before = _most_met(levels, _BEFORE_PLAYER, 1)
        after = _most_met(levels, load.SHARED_PLAYER, 1)
        rows.append(
            "| most conversations within the load targets, one process (part 3) "
            f"| {_count(before)} (`{_BEFORE_PLAYER}` player) | {_count(after)} (`{load.SHARED_PLAYER}`) |"
        )
        if any(row.get("processes", 1) == 2 for row in levels):
            sharded = _most_met(levels, load.SHARED_PLAYER, 2)
            rows.append(f"| the same over two bot processes (shards) | | {_count(sharded)} |")
    wire_levels = (results.get("wire") or {}).get("levels", [])
    if wire_levels:
        held = [level["conversations"] for level in wire_levels if level["summary"]["held"]]
        rows.append(
            "| most conversations held in every run, whole bot at the wire (part 3) | "
            f"| {_count(max(held, default=None))} |"
        )
    if not rows:
        return
    yield "## Before and after (this run)"
    yield ""
    yield (
        "What the bot replaced, measured beside what replaced it in this same run; `bench/FINDINGS.md` has the "
        "profiles behind each change."
    )
    yield ""
    yield "| measure | before | after |"
    yield "| --- | --- | --- |"
    yield from rows
    yield ""
