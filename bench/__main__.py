"""Run every benchmark and write ``bench/RESULTS.md`` (a table per benchmark) and ``bench/results.json`` (raw).

Usage: ``python -m bench [--repeats N] [--only NAME ...] [--quick] [--load-levels N ...] [--load-seconds S]
[--load-processes P]``
(``scripts/bench`` installs what it needs first). ``--quick`` runs every part tiny (for the tests: structure, not
speed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import cpu_path, load, resampling, soak, store_latency, summary, tool_turn, turn_timings, wire
from bench.timing import Options, machine

HERE = Path(__file__).resolve().parent
Benchmark = tuple[Callable[[Options], dict[str, Any]], Callable[[dict[str, Any]], Iterator[str]]]
BENCHMARKS: dict[str, Benchmark] = {
    "resampling": (lambda options: resampling.run(options.repeats), resampling.iter_markdown),
    "cpu_path": (cpu_path.run, cpu_path.iter_markdown),
    "wire": (wire.run, wire.iter_markdown),
    "load": (load.run, load.iter_markdown),
    "tool_turn": (tool_turn.run, tool_turn.iter_markdown),
    "turn_timings": (turn_timings.run, turn_timings.iter_markdown),
    "soak": (soak.run, soak.iter_markdown),
    "store_latency": (store_latency.run, store_latency.iter_markdown),
}
#: Run unless ``--only`` says otherwise. ``load`` (stand-ins for the receive path and the sender, no DAVE, no
#: ``sendto``; kept to compare discord.py's player designs) runs only when named: ``wire`` measures the real code.
DEFAULT_BENCHMARKS = tuple(name for name in BENCHMARKS if name != "load")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="runs per measurement (parts 1 and 2 keep the best; the load at the wire runs at least 5 per level and "
        "reports the median run and the spread)",
    )
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--quick", action="store_true", help="tiny runs: checks the benchmarks work, not speed")
    parser.add_argument(
        "--load-levels",
        type=int,
        nargs="+",
        help=f"concurrent conversations to load (default {' '.join(map(str, wire.LEVELS))})",
    )
    parser.add_argument(
        "--load-seconds",
        type=float,
        help=f"measured seconds per load run (default {wire.SECONDS_PER_RUN:g}; at least {wire.RUNS} runs per level)",
    )
    parser.add_argument(
        "--load-processes",
        type=int,
        help="bot processes (shards) sharing each load level (default: one per core for wire, 1 for load)",
    )
    args = parser.parse_args(argv)
    if (
        args.repeats < 1
        or (args.load_processes is not None and args.load_processes < 1)
        or (args.load_levels and min(args.load_levels) < 1)
        or (args.load_seconds or 1) <= 0
    ):
        parser.error("--repeats, --load-levels and --load-processes must be >= 1, --load-seconds > 0")
    options = Options(
        repeats=args.repeats,
        quick=args.quick,
        load_levels=tuple(args.load_levels) if args.load_levels else None,
        load_seconds=args.load_seconds,
        load_processes=args.load_processes,
    )
    selected = args.only or list(DEFAULT_BENCHMARKS)
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    results: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": command,
    }
    lines = ["# Benchmark results", ""]
    info = results["machine"]
    lines += [f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}. Run {results['date']}.", ""]
    lines += [f"Written by `{command}`, as it wrote it (nothing here is edited by hand).", ""]
    lines += [
        "Regenerate with `scripts/bench` (or `python -m bench`); raw figures in `bench/results.json`; profiles, "
        "missed targets and what was changed in `bot/` in `bench/FINDINGS.md`.",
        "",
    ]
    parts: list[str] = []
    for name in selected:
        run, render = BENCHMARKS[name]
        print(f"running {name}...", file=sys.stderr)
        results[name] = run(options)
        parts += [*render(results[name]), ""]
    lines += [*summary.iter_markdown(results), *parts]
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (HERE / "RESULTS.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
