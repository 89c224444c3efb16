"""The benchmark command runs and reports what it claims (no speed is asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench import resampling


def test_resampling_benchmark_reports_every_implementation_and_quality() -> None:
    result = resampling.run(repeats=1)
    impls = {row["impl"] for row in result["rows"]}
    assert impls == {"ours", "soxr HQ", "soxr VHQ", "scipy resample_poly"}
    ours = [row for row in result["rows"] if row["impl"] == "ours"]
    assert all(row["audio_s_per_cpu_s"] > 0 and row["speed_vs_soxr_hq"] > 0 for row in ours)
    assert all(row["snr_vs_soxr_vhq_db"] >= 40 for row in ours)
    assert result["rejection_15khz_db"] >= 60
    markdown = "\n".join(resampling.iter_markdown(result))
    assert markdown.count("| ours |") == len(ours)


def test_bench_command_writes_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_main, "HERE", tmp_path)
    assert bench_main.main(["--repeats", "1", "--only", "resampling"]) == 0
    raw = json.loads((tmp_path / "results.json").read_text())
    assert raw["machine"]["cores"] >= 1 and raw["resampling"]["rows"]
    assert (tmp_path / "RESULTS.md").read_text().startswith("# Benchmark results")
