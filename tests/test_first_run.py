"""A first run without any account, through the real command line: ``simulate --offline`` and ``fake-server``.

Each test runs ``python -m bot`` as a subprocess with a WAV it makes itself. The local server speaks with espeak-ng
when it is installed (``scripts/test`` installs it) and with a tone otherwise; both voices are exercised: the tone
by hiding espeak-ng from the server's ``PATH``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import numpy as np
import pytest

from bot.audio.wav import read_wav
from bot.fakeserver.voice import TONE_HZ
from bot.realtime.simulate import EXIT_OK, SimulationOptions, run_simulation
from tests.realtime.test_simulate import QUESTION, dominant_hz
from tests.test_main import run_bot

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(
    ESPEAK is None and not os.environ.get("CI"),
    reason="espeak-ng is not installed here (scripts/test installs it, and CI requires it)",
)


def float_question(path: Path, seconds: float = 5.6, sample_rate: int = 16_000) -> None:
    """A float32 WAV, longer than 5 s: 0.4 s of quiet, 1.2 s of a warbling "voice", then quiet to the end."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    voice = 0.4 * np.sin(2 * np.pi * (220 + 60 * np.sin(2 * np.pi * 3 * t)) * t) * ((t >= 0.4) & (t < 1.6))
    data = voice.astype("<f4").tobytes()
    fmt = (3).to_bytes(2, "little") + (1).to_bytes(2, "little") + sample_rate.to_bytes(4, "little")
    fmt += (4 * sample_rate).to_bytes(4, "little") + (4).to_bytes(2, "little") + (32).to_bytes(2, "little")
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + len(data).to_bytes(4, "little") + data
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)


def test_offline_simulate_answers_a_float_wav_with_a_tone_when_espeak_is_missing(tmp_path: Path) -> None:
    question, answer = tmp_path / "q.wav", tmp_path / "a.wav"
    float_question(question)
    no_programs = tmp_path / "bin"
    no_programs.mkdir()
    result = run_bot(
        "simulate", "--offline", "--input", str(question), "--output", str(answer), "--speed", "4",
        env={"PATH": str(no_programs)}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("offline: a local Realtime server at ws://127.0.0.1:"), lines
    assert lines[1].startswith("connected to ws://127.0.0.1:")
    assert f"answers are a {TONE_HZ:.0f} Hz tone (espeak-ng is not installed" in lines[0]
    assert "user: (1.2 s of speech; the local server recognises no words)" in lines  # the VAD found the question
    assert 'tool call: get_your_info({"query": "favorite food"}) -> {"favorite_food":"spicy miso ramen"}' in lines
    assert "assistant: My favorite food is spicy miso ramen." in lines
    assert "streamed 5 s of 5.6 s" in lines  # the progress line of an input over 5 s
    samples, rate = read_wav(answer)
    assert rate == 48_000 and samples.shape[1] == 2 and len(samples) >= rate // 2
    assert abs(dominant_hz(samples[:, 0], rate) - TONE_HZ) < 5.0
    assert "Traceback" not in result.stderr


@needs_espeak
def test_offline_simulate_hears_espeak_speech_and_answers_with_espeak(tmp_path: Path) -> None:
    question, answer = tmp_path / "q.wav", tmp_path / "a.wav"
    assert ESPEAK is not None, "CI requires espeak-ng: scripts/test installs it"
    subprocess.run([ESPEAK, "-v", "en-us", "-w", str(question), "What is your favorite food?"], check=True, timeout=30)
    result = run_bot(
        "simulate", "--offline", "--input", str(question), "--output", str(answer), "--speed", "4",
        env={}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("answers are spoken by espeak-ng"), lines
    heard = [line for line in lines if line.startswith("user: (")]
    assert len(heard) == 1 and 1.0 <= float(heard[0].split()[1].lstrip("(")) <= 2.5, lines  # one spoken question
    assert "assistant: My favorite food is spicy miso ramen." in lines
    samples, rate = read_wav(answer)
    seconds = len(samples) / rate
    assert 1.5 < seconds < 5.0, seconds  # a spoken sentence, not the 0.8 s tone
    spectrum = np.abs(np.fft.rfft(samples[:, 0]))
    peak_share = float(np.max(spectrum) ** 2 / np.sum(spectrum**2))
    assert peak_share < 0.2, peak_share  # speech spreads its energy; a tone puts nearly all of it in one bin


async def test_fake_server_runs_alone_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "AZURE_", "REALTIME_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "fake-server", "--port", "0", env=clean, cwd=tmp_path, stdout=PIPE, stderr=PIPE
    )
    assert process.stdout is not None
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert first.startswith("local Realtime server (GA) listening on ws://127.0.0.1:"), first
        url = first.split(" listening on ", 1)[1].split(";", 1)[0]
        lines: list[str] = []
        options = SimulationOptions(QUESTION, tmp_path / "a.wav", url=url, pace=4.0)
        assert await run_simulation(options, lines.append) == EXIT_OK, lines
        assert any(line.startswith("tool call: get_your_info(") for line in lines), lines
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    printed = stdout.decode().splitlines()
    assert printed[2:] == [  # after the rest of the greeting
        "a client connected (GA)",
        "heard 1.4 s of speech",
        'called get_your_info({"query": "favorite food"})',
        "said: My favorite food is spicy miso ramen.",
        "the client left",
    ], printed
    assert "Traceback" not in stderr.decode()


def test_fake_server_on_a_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_bot("fake-server", "--port", str(port), env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: "), result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--timeout", "nan"],
            "argument --timeout: a timeout is a finite number of seconds above 0 (got 'nan')",
        ),
        (
            ["--timeout", "inf"],
            "argument --timeout: a timeout is a finite number of seconds above 0 (got 'inf')",
        ),
        (["--speed", "0"], "error: argument --speed: a speed is a factor above 0 and at most 100 (got '0')"),
        (["--offline", "--url", "ws://x"], "argument --url: not allowed with argument --offline"),
        (["--offline", "--api-key", "k"], "--api-key goes with --url, not with --offline"),
    ],
    ids=["timeout-nan", "timeout-inf", "speed-0", "offline-and-url", "offline-and-key"],
)
def test_bad_simulate_arguments_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_bot("simulate", "--input", "q.wav", "--output", "a.wav", *args, env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("voicebot simulate: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_input_problems_are_found_before_connecting(tmp_path: Path) -> None:
    """Each is exit 2 with one line; the URL points at nothing, so a connection attempt would be exit 1 instead."""
    damaged = tmp_path / "damaged.wav"
    damaged.write_bytes(b"RIFF\x20\x00\x00\x00WAVEfmt \x04\x00\x00\x00\x01\x00\x01\x00data\x00\x00\x00\x00")
    good = tmp_path / "good.wav"
    float_question(good, seconds=0.5)
    url = "ws://127.0.0.1:9/v1"
    cases = [
        ([damaged, tmp_path / "a.wav", "--url", url], "its format chunk is 4 bytes, at least 16 expected"),
        ([good, tmp_path / "missing" / "a.wav", "--url", url], f"the folder {tmp_path / 'missing'} does not exist"),
        ([good, tmp_path, "--url", url], "it is a folder"),
        ([good, tmp_path / "a.wav", "--url", "http://127.0.0.1:9/v1"], "speak WebSocket: try ws://127.0.0.1:9/v1"),
        ([good, tmp_path / "a.wav", "--url", url, "--timeout", "1e306"], "at most 3600 (got 1e+306)"),
    ]
    for (question, answer, *rest), message in cases:
        result = run_bot(
            "simulate", "--input", str(question), "--output", str(answer), *map(str, rest), env={}, cwd=tmp_path
        )
        assert result.returncode == 2, (message, result.stdout, result.stderr)
        assert result.stdout.startswith("error: ") and message in result.stdout, result.stdout
        assert len(result.stdout.splitlines()) == 1 and "Traceback" not in result.stderr


def test_offline_input_problems_are_one_line_before_any_server_talk(tmp_path: Path) -> None:
    result = run_bot("simulate", "--offline", "--input", "missing.wav", "--output", "a.wav", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == "error: missing.wav: no such file\n" and "Traceback" not in result.stderr
