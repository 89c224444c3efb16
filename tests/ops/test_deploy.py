"""The systemd unit template passes ``systemd-analyze verify`` and says what the README promises: restarts on
failure (not on a settings error), a stop timeout above the bot's shutdown deadline, a non-root user, the
environment file, SIGTERM to the supervisor only.

``systemd-analyze verify`` checks that ``ExecStart`` exists, so the copy verified here points at this checkout's
``voicebot`` script instead of ``/opt/voicebot``; every other line is verified as shipped. Without systemd-analyze
(a container without systemd) the verification is skipped: installing systemd only for it is not cheap.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import DEFAULT_SHUTDOWN_DEADLINE_S

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "voicebot@.service"
INSTALLED_SCRIPT = "/opt/voicebot/.venv/bin/voicebot"


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_restarts_on_failure_runs_unprivileged_and_stops_after_the_bots_deadline() -> None:
    unit = directives()
    assert unit["Restart"] == ["on-failure"] and unit["RestartPreventExitStatus"] == ["2"]
    assert int(unit["TimeoutStopSec"][0]) > DEFAULT_SHUTDOWN_DEADLINE_S
    assert unit["User"] == ["voicebot"] and unit["Group"] == ["voicebot"]  # not root
    assert unit["EnvironmentFile"] == ["/etc/voicebot/%i.env"]
    assert unit["KillMode"] == ["mixed"] and unit["KillSignal"] == ["SIGTERM"]
    assert unit["ExecStart"][0].startswith(INSTALLED_SCRIPT + " ")


def verify(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("voicebot")
    if not script.is_file():
        pytest.skip(f"the voicebot script is not installed next to {sys.executable} (pip install the project)")
    unit = tmp_path / "voicebot@.service"
    unit.write_text(text.replace(INSTALLED_SCRIPT, str(script)).replace("/opt/voicebot", str(ROOT)), encoding="utf-8")
    return subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "voicebot@main.service")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_unit_and_would_catch_a_mistake(tmp_path: Path) -> None:
    result = verify(UNIT.read_text(encoding="utf-8"), tmp_path)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
    broken = UNIT.read_text(encoding="utf-8").replace("Restart=on-failure", "Restart=sometimes")
    complaint = verify(broken, tmp_path)  # systemd only warns (exit 0): the output is what tells
    assert "Failed to parse service restart specifier" in complaint.stdout + complaint.stderr
