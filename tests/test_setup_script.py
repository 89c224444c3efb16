"""``scripts/setup.sh``'s install step, run by bash with a stand-in for the virtualenv's Python (no network).

The stand-in records each pip command and prints a banner like setuptools' editable install does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BANNER = "******** Editable install banner ********"


def workspace(tmp_path: Path, pip_exit: int = 0) -> Path:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    python = tmp_path / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/pip-calls"\necho "{BANNER}"\nexit {pip_exit}\n')
    python.chmod(0o755)
    return tmp_path


def ensure_venv(where: Path, extras: str) -> subprocess.CompletedProcess[str]:
    script = f'set -euo pipefail; source "{ROOT}/scripts/setup.sh"; ensure_venv "{extras}"'
    return subprocess.run(["bash", "-c", script], cwd=where, capture_output=True, text=True, timeout=60)


def installs(where: Path) -> list[str]:
    calls = where / "pip-calls"
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line for line in lines if " -e " in line]


def test_alternating_run_and_test_installs_once_per_need_and_hides_the_banner(tmp_path: Path) -> None:
    where = workspace(tmp_path)
    outputs = []
    for extras in ("", "test,dev", "", "test,dev", "dev"):  # scripts/run, scripts/test, run, test, a subset
        result = ensure_venv(where, extras)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    assert installs(where) == ["-m pip install -q -e .", "-m pip install -q -e .[dev,test]"]
    assert all(BANNER not in output for output in outputs)
    assert outputs[2:] == ["", "", ""]  # nothing to do, nothing said
    assert BANNER in (where / ".venv" / "install.log").read_text()


def test_a_changed_pyproject_reinstalls(tmp_path: Path) -> None:
    where = workspace(tmp_path)
    assert ensure_venv(where, "test,dev").returncode == 0
    with (where / "pyproject.toml").open("a") as handle:
        handle.write("\n# changed\n")
    assert ensure_venv(where, "").returncode == 0
    assert installs(where) == ["-m pip install -q -e .[dev,test]", "-m pip install -q -e ."]


def test_a_failed_install_shows_pip_output_and_fails(tmp_path: Path) -> None:
    where = workspace(tmp_path, pip_exit=1)
    result = ensure_venv(where, "")
    assert result.returncode != 0
    assert BANNER in result.stderr and "installing the Python packages failed" in result.stderr
    assert not (where / ".venv" / ".voicebot-installed").exists()
