"""The command line, run as a user would: a real subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

from bot.audio.wav import read_wav
from tests.realtime.server import RealtimeTestServer
from tests.realtime.test_simulate import QUESTION, spoken_tool_turn

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


def test_help_lists_the_commands_in_plain_text(tmp_path: Path) -> None:
    result = run_bot("--help", env={}, cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "simulate", "fake-server", "simulate --offline"):
        assert command in result.stdout
    for args in (("simulate", "--help"), ("fake-server", "--help")):
        sub = run_bot(*args, env={}, cwd=tmp_path)
        assert sub.returncode == 0 and "usage: voicebot " in sub.stdout
        assert "``" not in result.stdout + sub.stdout  # no reStructuredText markup


def test_a_missing_env_file_is_an_error_wherever_it_is_given(tmp_path: Path) -> None:
    for args in (
        ("--env-file", "nope.env"),
        ("simulate", "--env-file", "nope.env", "--input", "q.wav", "--output", "a.wav"),
    ):
        result = run_bot(*args, env={}, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr == "error: the settings file nope.env given with --env-file does not exist.\n"


async def run_bot_async(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """``run_bot`` without blocking the event loop (for tests that serve a peer on it)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "AZURE_", "REALTIME_"))}
    clean.update(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=clean, cwd=cwd, stdout=PIPE, stderr=PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_simulate_speaks_a_question_and_writes_the_tool_backed_answer(tmp_path: Path) -> None:
    output = tmp_path / "answer.wav"
    async with RealtimeTestServer(spoken_tool_turn) as server:
        code, stdout, stderr = await run_bot_async(
            "simulate", "--input", str(QUESTION), "--output", str(output), "--url", server.url,
            "--api-key", "test-key", env={}, cwd=tmp_path,
        )  # fmt: skip
    assert code == 0, stderr
    assert server.script_errors == [] and server.schema_problems == []
    lines = stdout.splitlines()
    assert "user: What is your favorite food?" in lines
    assert any(line.startswith('tool call: get_your_info({"query": "favorite food"})') for line in lines), stdout
    assert any(line.startswith("latency (end of speech -> first answer audio): ") for line in lines), stdout
    samples, rate = read_wav(output)
    assert rate == 48_000 and samples.shape[1] == 2 and len(samples) >= rate // 2
    assert "test-key" not in stdout + stderr


async def test_simulate_without_a_server_or_input_is_one_line(tmp_path: Path) -> None:
    code, stdout, stderr = await run_bot_async(
        "simulate", "--input", "missing.wav", "--output", "out.wav", env={}, cwd=tmp_path
    )
    assert code == 2 and "Traceback" not in stderr  # no --url and no provider configured
    assert "OPENAI_API_KEY" in stderr and "--offline" in stderr
    assert "bot" not in stderr.splitlines()[0]  # the heading speaks of simulate, not of a bot that is not starting
    code, stdout, stderr = await run_bot_async(
        "simulate", "--input", "missing.wav", "--output", "out.wav", "--url", "ws://127.0.0.1:9/v1",
        env={}, cwd=tmp_path,
    )  # fmt: skip
    assert code == 2 and stdout.startswith("error: ") and "no such file" in stdout and "Traceback" not in stderr
