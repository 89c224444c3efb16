"""Run every benchmark and write ``bench/RESULTS.md`` (a table per benchmark) and ``bench/results.json`` (raw).

Usage: ``python -m bench [--repeats N] [--only NAME ...]`` (``scripts/bench`` installs what it needs first).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import resampling
from bench.timing import machine

HERE = Path(__file__).resolve().parent
Benchmark = tuple[Callable[[int], dict[str, Any]], Callable[[dict[str, Any]], Iterator[str]]]
BENCHMARKS: dict[str, Benchmark] = {
    "resampling": (resampling.run, resampling.iter_markdown),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the best is kept")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    args = parser.parse_args(argv)
    selected = args.only or list(BENCHMARKS)
    results: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    lines = ["# Benchmark results", ""]
    info = results["machine"]
    lines += [f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}. Run {results['date']}.", ""]
    for name in selected:
        run, render = BENCHMARKS[name]
        print(f"running {name}...", file=sys.stderr)
        results[name] = run(args.repeats)
        lines += [*render(results[name]), ""]
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (HERE / "RESULTS.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
