"""``run_simulation``'s inputs: which key a server rejected, and numbers checked before connecting."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bot.audio.wav import write_wav
from bot.config import RealtimeConfig
from bot.realtime.simulate import EXIT_BAD_INPUT, EXIT_FAILED, SimulationOptions, run_simulation
from bot.secret import Secret
from tests.realtime.conftest import ServerFactory
from tests.realtime.server import idle
from tests.realtime.test_simulate import QUESTION

WRONG_KEY = "sk-wrong-key-0123456789"


async def rejection(realtime_server: ServerFactory, tmp_path: Path, key_from: str) -> str:
    """The one line a server that rejects every key gets, with the key given on ``key_from``."""
    lines: list[str] = []
    async with realtime_server(idle) as server:
        output = tmp_path / "a.wav"
        if key_from == "env":  # REALTIME_PROVIDER=custom with REALTIME_URL and REALTIME_API_KEY, no --url
            configured = RealtimeConfig(provider="custom", url=server.url, api_key=Secret(WRONG_KEY))
            options = SimulationOptions(QUESTION, output, realtime=configured)
        else:
            key = Secret(WRONG_KEY) if key_from == "command line" else None
            options = SimulationOptions(QUESTION, output, url=server.url, api_key=key)
        assert await run_simulation(options, lines.append) == EXIT_FAILED
    assert len(lines) == 1 and WRONG_KEY not in lines[0]
    assert not output.exists()
    return lines[0]


async def test_a_rejected_command_line_key_is_named_as_such(realtime_server: ServerFactory, tmp_path: Path) -> None:
    line = await rejection(realtime_server, tmp_path, "command line")
    assert line == "error: the Realtime server rejected the API key (HTTP 401): the key given with --api-key; check it"


async def test_a_rejected_env_key_names_its_variable(realtime_server: ServerFactory, tmp_path: Path) -> None:
    line = await rejection(realtime_server, tmp_path, "env")
    assert line == (
        "error: the Realtime server rejected the API key (HTTP 401): "
        "REALTIME_API_KEY from the environment or .env; check it there"
    )


async def test_no_key_at_all_says_to_give_one(realtime_server: ServerFactory, tmp_path: Path) -> None:
    line = await rejection(realtime_server, tmp_path, "none")
    assert line.endswith("rejected the API key (HTTP 401): no key was sent; give one with --api-key")


@pytest.mark.parametrize(
    ("pace", "timeout_s", "message"),
    [
        (math.nan, 30.0, "the speed must be a finite number above 0 (got nan)"),
        (0.0, 30.0, "the speed must be a finite number above 0 (got 0.0)"),
        (1.0, math.inf, "the timeout must be a number of seconds above 0 and at most 3600 (got inf)"),
        (1.0, -1.0, "the timeout must be a number of seconds above 0 and at most 3600 (got -1.0)"),
        (1.0, 1e306, "the timeout must be a number of seconds above 0 and at most 3600 (got 1e+306)"),
    ],
)
async def test_numbers_are_checked_before_anything_else(
    tmp_path: Path, pace: float, timeout_s: float, message: str
) -> None:
    lines: list[str] = []
    options = SimulationOptions(
        QUESTION, tmp_path / "a.wav", url="ws://127.0.0.1:9/v1", pace=pace, answer_timeout_s=timeout_s
    )
    assert await run_simulation(options, lines.append) == EXIT_BAD_INPUT
    assert lines == [f"error: {message}"]


async def test_a_wav_without_samples_is_bad_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    write_wav(empty, b"", 16_000, 1)
    lines: list[str] = []
    options = SimulationOptions(empty, tmp_path / "a.wav", url="ws://127.0.0.1:9/v1")
    assert await run_simulation(options, lines.append) == EXIT_BAD_INPUT
    assert lines == [f"error: {empty} holds no audio"]
