"""Running the real ``python -m bot`` as a child process, against the local stand-in Discord API."""

from __future__ import annotations

import asyncio
import os
import sys
from asyncio.subprocess import PIPE, Process
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.fake_discord_api import FakeDiscordAPI

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "discord-token-abcdef"
#: Longest a test waits for a process to exit: the default shutdown deadline and a margin, never a speed claim.
EXIT_WAIT_S = 30.0


def bot_env(discord: FakeDiscordAPI | None, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a bot process: nothing inherited that configures the bot, this test's settings instead."""
    prefixes = ("DISCORD_", "OPENAI_", "AZURE_", "REALTIME_", "SHARD_", "METRICS_", "LOG_", "MAX_", "SHUTDOWN_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        DISCORD_TOKEN=TOKEN,
        REALTIME_PROVIDER="custom",
        REALTIME_URL="ws://127.0.0.1:9/v1",  # no session is started in these tests
        DATA_DIR=str(data_dir),
        PYTHONPATH=str(ROOT),
    )
    if discord is not None:
        env.update(discord.env())
    env.update(extra)
    return env


async def start_bot(*args: str, env: Mapping[str, str], cwd: Path) -> Process:
    """``python -m bot ARGS`` in ``cwd``, configured by ``env`` alone (``cwd`` holds no ``.env``)."""
    assert not (cwd / ".env").exists()
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=dict(env), cwd=cwd, stdout=PIPE, stderr=PIPE
    )


async def finish(process: Process, timeout_s: float = EXIT_WAIT_S) -> tuple[int, str, str]:
    """Wait for the process to exit (killing it if it overstays ``timeout_s``): its code, stdout and stderr."""
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        stdout, stderr = await process.communicate()
        raise AssertionError(f"the bot did not exit within {timeout_s} s:\n{stderr.decode()[-3000:]}") from None
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
