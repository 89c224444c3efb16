"""The command line, run as a user would: a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SECRET = "sk-must-not-leak-123456"


def run_bot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "AZURE_", "REALTIME_"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=clean, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_missing_settings_exit_2_with_one_line_each_and_no_traceback(tmp_path: Path) -> None:
    result = run_bot(env={"OPENAI_API_KEY": SECRET, "REALTIME_PROVIDER": "openai"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "- DISCORD_TOKEN is not set: create a bot at https://discord.com/developers/applications" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_env_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REALTIME_PROVIDER=custom\nREALTIME_URL=ftp://x\n", encoding="utf-8")
    result = run_bot(env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "REALTIME_URL must be a ws:// or wss:// URL (got 'ftp://x')." in result.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_bot("--help", env={}, cwd=tmp_path)
    assert result.returncode == 0
    assert "run" in result.stdout
