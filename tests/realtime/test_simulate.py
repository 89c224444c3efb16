"""``run_simulation`` end to end: a spoken WAV through the bot's audio path to the local Realtime server and back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from bot.audio.wav import read_wav
from bot.realtime.simulate import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, SimulationOptions, run_simulation
from bot.secret import Secret
from tests.realtime.conftest import ServerFactory
from tests.realtime.server import Peer, idle, tone_pcm16

QUESTION = Path(__file__).parent / "fixtures" / "question.wav"
ANSWER_MS = 600


async def spoken_tool_turn(peer: Peer) -> None:
    """A model that hears the question (VAD over the received audio), looks the answer up, then speaks it."""
    start_ms, end_ms = await peer.wait_for_user_turn()
    assert 0 <= start_ms < 500 and 1000 < end_ms < 2200, (start_ms, end_ms)  # the 1.7 s question, found by VAD
    await peer.user_transcript(peer.last_user_item_id, "What is your favorite food?")
    response_id = await peer.start_response()
    [call_id] = await peer.call_tools(
        [("get_your_info", json.dumps({"query": "favorite food"}))], response_id=response_id
    )
    await peer.finish_response(response_id)
    output = await peer.expect("conversation.item.create")
    assert output["item"]["type"] == "function_call_output" and output["item"]["call_id"] == call_id
    food = json.loads(output["item"]["output"])
    await peer.expect("response.create")
    await peer.answer_with_audio(tone_pcm16(ANSWER_MS), f"I love {json.dumps(food)}!")
    await idle(peer)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize(
    ("pace", "dialect"), [(4.0, "ga"), (4.0, "beta"), (1.0, "ga")], ids=["fast-ga", "fast-beta", "real-time-ga"]
)
async def test_a_spoken_question_gets_a_tool_backed_spoken_answer(
    realtime_server: ServerFactory, tmp_path: Path, pace: float, dialect: Literal["ga", "beta"]
) -> None:
    lines: list[str] = []
    output = tmp_path / "answer.wav"
    async with realtime_server(spoken_tool_turn, dialect=dialect) as server:
        options = SimulationOptions(
            QUESTION, output, url=server.url, api_key=Secret("test-key"), dialect=dialect, pace=pace
        )
        code = await run_simulation(options, lines.append)
    text = "\n".join(lines)
    assert code == EXIT_OK, text
    assert "user: What is your favorite food?" in lines
    assert any(line.startswith('tool call: get_your_info({"query": "favorite food"}) -> ') for line in lines), text
    assert any(line.startswith("assistant: I love ") for line in lines), text
    assert any(line.startswith("latency (end of speech -> first answer audio): ") for line in lines), text
    assert any(line.startswith("usage: 240 input tokens") for line in lines), text  # two responses of 120
    peer = server.peers[0]
    kinds = [e["type"] for e in peer.received if e["type"] != "input_audio_buffer.append"]
    assert kinds == ["session.update", "conversation.item.create", "response.create"]
    assert len(peer.audio) >= 1700 * 48  # the whole question reached the server, as 24 kHz mono
    samples, rate = read_wav(output)
    assert rate == 48_000 and samples.shape[1] == 2
    assert abs(len(samples) / rate * 1000 - ANSWER_MS) <= 40  # the whole answer, as played, 20 ms frames
    assert np.array_equal(samples[:, 0], samples[:, 1])
    assert abs(dominant_hz(samples[:, 0], rate) - 440.0) < 5.0


async def test_a_missing_input_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    lines: list[str] = []
    options = SimulationOptions(tmp_path / "nope.wav", tmp_path / "out.wav", url="ws://127.0.0.1:9/v1")
    assert await run_simulation(options, lines.append) == EXIT_BAD_INPUT
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no such file" in lines[0]


async def test_a_file_that_is_not_a_wav_is_rejected(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.wav"
    bogus.write_text("hello, not audio")
    lines: list[str] = []
    options = SimulationOptions(bogus, tmp_path / "out.wav", url="ws://127.0.0.1:9/v1")
    assert await run_simulation(options, lines.append) == EXIT_BAD_INPUT
    assert len(lines) == 1 and "not a WAV file" in lines[0] and lines[0].startswith("error: ")


async def test_an_unreachable_server_is_one_line_and_exit_1(tmp_path: Path, unused_tcp_port: int) -> None:
    lines: list[str] = []
    options = SimulationOptions(QUESTION, tmp_path / "out.wav", url=f"ws://127.0.0.1:{unused_tcp_port}/v1")
    assert await run_simulation(options, lines.append) == EXIT_FAILED
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the Realtime server at ws://127.0.0.1:")
    assert not (tmp_path / "out.wav").exists()


async def test_a_rejected_key_is_one_line_without_the_key(realtime_server: ServerFactory, tmp_path: Path) -> None:
    lines: list[str] = []
    async with realtime_server(idle) as server:
        options = SimulationOptions(QUESTION, tmp_path / "out.wav", url=server.url, api_key=Secret("sk-wrong-123456"))
        code = await run_simulation(options, lines.append)
    assert code == EXIT_FAILED and len(lines) == 1
    assert "rejected the API key (HTTP 401)" in lines[0] and "sk-wrong" not in lines[0]
