"""``python -m bot simulate`` as a subprocess against a misbehaving local Realtime server: a drop mid-turn still
gives the answer (exit 0); a failed answer exits 1 with its reason; a key the server echoes is never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.audio.wav import read_wav
from tests.realtime.server import UNIT_S, Peer, RealtimeTestServer, idle, tone_pcm16
from tests.realtime.test_simulate import QUESTION
from tests.test_main import run_bot_async

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-simulated-0123456789abcdef"
ANSWER_MS = 600


async def simulate(server: RealtimeTestServer, tmp_path: Path) -> tuple[int, str, str]:
    return await run_bot_async(
        "simulate", "--input", str(QUESTION), "--output", str(tmp_path / "answer.wav"), "--url", server.url,
        "--api-key", KEY, env={"PYTHONPATH": str(ROOT)}, cwd=tmp_path,
    )  # fmt: skip


async def hear(peer: Peer) -> None:
    await peer.wait_for_user_turn()


async def drop_before_the_answer(peer: Peer) -> None:
    await hear(peer)  # committed, but no transcript and no response yet
    await peer.drop()


async def drop_during_the_tool_call(peer: Peer) -> None:
    await hear(peer)
    await peer.user_transcript(peer.last_user_item_id, "What is your favorite food?")
    await peer.call_tools([("get_your_info", '{"query": "favorite food"}')])
    await peer.drop()


async def drop_during_the_answer(peer: Peer) -> None:
    await hear(peer)
    await peer.user_transcript(peer.last_user_item_id, "What is your favorite food?")
    response_id = await peer.start_response()
    await peer.stream_audio(response_id, tone_pcm16(200), None)  # half an answer, then the socket dies
    await peer.drop()


async def answer_when_asked(peer: Peer) -> None:
    """The second connection: the carried turn arrives, then one response.create, then the answer."""
    await peer.configured.wait()
    while (await peer.next_event(timeout_s=2 * UNIT_S))["type"] != "response.create":
        pass
    await peer.answer_with_audio(tone_pcm16(ANSWER_MS), "I love ramen.")
    await idle(peer)


@pytest.mark.parametrize("first", [drop_before_the_answer, drop_during_the_tool_call, drop_during_the_answer])
async def test_a_drop_mid_turn_still_gives_the_answer_and_exit_0(tmp_path: Path, first: object) -> None:
    async with RealtimeTestServer([first, answer_when_asked], api_key=KEY) as server:  # type: ignore[list-item]
        code, stdout, stderr = await simulate(server, tmp_path)
    assert server.script_errors == [] and server.schema_problems == []
    assert code == 0, stdout + stderr
    assert "assistant: I love ramen." in stdout.splitlines() and "reconnecting: " in stdout
    carried = [e for e in server.peers[1].received if e["type"] == "conversation.item.create"]
    kinds = [e["item"]["type"] for e in carried]
    if first is drop_during_the_tool_call:
        assert kinds[-2:] == ["function_call", "function_call_output"]
    if first is drop_before_the_answer:  # no transcript came: the words travel as audio
        assert carried[-1]["item"]["content"][0]["type"] == "input_audio"
    samples, rate = read_wav(tmp_path / "answer.wav")
    assert len(samples) / rate * 1000 >= ANSWER_MS - 20
    assert KEY not in stdout + stderr


async def fails_echoing_the_key(peer: Peer) -> None:
    await hear(peer)
    response_id = await peer.start_response()
    details = {"type": "failed", "error": {"type": "server_error", "code": "bad_key", "message": f"key {KEY} is odd"}}
    await peer.send(
        {
            "type": "response.done",
            "event_id": peer.new_id("ev"),
            "response": {"id": response_id, "status": "failed", "status_details": details},
        }
    )
    await idle(peer)


async def test_a_failed_answer_exits_1_with_the_redacted_reason(tmp_path: Path) -> None:
    async with RealtimeTestServer(fails_echoing_the_key, api_key=KEY) as server:
        code, stdout, stderr = await simulate(server, tmp_path)
    assert code == 1, stdout + stderr
    assert "response failed: bad_key: key *** is odd" in stdout.splitlines()
    assert stdout.splitlines()[-3] == "error: the answer failed: bad_key: key *** is odd"
    assert KEY not in stdout + stderr


async def closes_4001_echoing_the_key(peer: Peer) -> None:
    await peer.configured.wait()
    await peer.close(4001, f"invalid key {KEY}")


async def test_a_4001_close_exits_1_at_once_with_the_redacted_reason(tmp_path: Path) -> None:
    async with RealtimeTestServer(closes_4001_echoing_the_key, api_key=KEY) as server:
        code, stdout, stderr = await simulate(server, tmp_path)
    assert code == 1, stdout + stderr
    assert "error: the Realtime server closed the session (close code 4001: invalid key ***)" in stdout.splitlines()
    assert len(server.peers) == 1 and "reconnecting" not in stdout
    assert KEY not in stdout + stderr
