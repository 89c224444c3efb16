"""The real ``python -m bot`` as a process, pointed at a local stand-in for Discord's API and gateway: healthy and
scraped over HTTP, stopped by SIGTERM when connected and while logging in (exit 0), one line with exit 1 when Discord
cannot be reached, exit 2 for a rejected token. Settings errors exit 2 through the same command line.

A shutdown that overruns its deadline, and the second signal, need a shutdown that hangs, which this stand-in cannot
make the real process do; ``test_service.py`` covers them with the real signal handling.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from tests.fake_discord_api import FakeDiscordAPI
from tests.ops.process import TOKEN, bot_env, finish, start_bot, wait_until
from tests.ops.scrape import free_port, scrape, value, wait_for_health


async def test_a_running_bot_is_healthy_serves_metrics_logs_json_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    async with FakeDiscordAPI() as discord:
        env = bot_env(discord, tmp_path, METRICS_PORT=str(port), LOG_FORMAT="json", LOG_LEVEL="DEBUG")
        process = await start_bot("run", "--processes", "1", env=env, cwd=tmp_path)
        try:
            health = await wait_for_health(port)
            assert health["ready"] is True and health["pid"] == process.pid
            assert health["shard_ids"] == [0] and health["shard_count"] == 1 and health["sessions"] == 0
            assert isinstance(health["latency_s"]["0"], float)
            await asyncio.sleep(1.1)  # the loop-lag monitor has measured at least once
            samples = await scrape(port)
            assert value(samples, "voicebot_sessions_active") == 0
            assert value(samples, "voicebot_event_loop_lag_seconds_count") >= 1
            assert discord.command_syncs == ["/applications/99/commands"]
            assert [i.shard for i in discord.identifies] == [(0, 1)]
        finally:
            process.send_signal(signal.SIGTERM)
            code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    assert "Traceback" not in stderr and TOKEN not in stderr + stdout
    entries = [json.loads(line) for line in stderr.splitlines()]  # every line is one JSON object
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    logged_in = next(e for e in entries if e["message"].startswith("logged in as voicebot"))
    assert logged_in["shard_id"] == 0
    assert entries[-1]["message"] == "stopped cleanly"


async def test_sigterm_while_logging_in_exits_0_without_a_traceback(tmp_path: Path) -> None:
    async with FakeDiscordAPI(login_delay_s=60.0) as discord:
        process = await start_bot("run", "--processes", "1", env=bot_env(discord, tmp_path), cwd=tmp_path)
        await wait_until(lambda: ("GET", "/users/@me") in discord.requests)
        process.send_signal(signal.SIGTERM)
        code, _stdout, stderr = await finish(process)
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Connector is closed" not in stderr


async def test_discord_unreachable_at_start_up_is_one_line_and_exit_1(tmp_path: Path) -> None:
    closed_port = free_port()
    env = bot_env(None, tmp_path, DISCORD_API_URL=f"http://127.0.0.1:{closed_port}/api/v10", LOG_LEVEL="WARNING")
    process = await start_bot("run", "--processes", "1", env=env, cwd=tmp_path)
    code, stdout, stderr = await finish(process)
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"Discord cannot be reached at http://127.0.0.1:{closed_port}/api/v10 (")
    assert lines[0].endswith("; check the network and try again.")
    assert stdout == ""


async def test_a_rejected_token_is_one_line_and_exit_2(tmp_path: Path) -> None:
    async with FakeDiscordAPI(token="another-token") as discord:
        env = bot_env(discord, tmp_path, LOG_LEVEL="WARNING")
        code, _stdout, stderr = await finish(await start_bot("run", "--processes", "1", env=env, cwd=tmp_path))
    assert code == 2
    assert stderr.strip().splitlines() == [
        "Discord rejected DISCORD_TOKEN: reset the token in the Developer Portal (Bot tab)."
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [("IDLE_LEAVE_S", "nan"), ("MAX_SESSION_MIN", "inf"), ("DAILY_BUDGET_MIN", "1e400"), ("DEV_GUILD_ID", "²"),
     ("SHARD_ID", "²"), ("METRICS_PORT", "٣")],
)  # fmt: skip
async def test_a_bad_number_is_one_line_and_exit_2(tmp_path: Path, key: str, value: str) -> None:
    env = bot_env(None, tmp_path, **{key: value, "SHARD_COUNT": "2"})
    code, _stdout, stderr = await finish(await start_bot("run", env=env, cwd=tmp_path))
    assert code == 2 and "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert lines[0] == "The bot cannot start; fix these settings (environment or .env):"
    assert len(lines) == 2 and lines[1].startswith(f"- {key} must be"), stderr
