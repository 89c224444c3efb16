"""The local server's stand-in model, over real WebSockets on loopback: with the bot's own client (both dialects,
every client event checked against the openai schema) and with a raw client for the turn-taking variants."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect

from bot.fakeserver.model import FIXED_QUERY, NO_TOOL_ANSWER, REQUEST_ANSWER, StandInModel, sentence_for
from bot.fakeserver.peer import BYTES_PER_MS, tone_pcm16
from bot.fakeserver.server import RealtimeServer
from bot.fakeserver.voice import TONE_MS, Voice
from bot.realtime.simulate import EXIT_OK, SimulationOptions, run_simulation
from bot.secret import Secret
from tests.realtime.server import UNIT_S, RealtimeTestServer
from tests.realtime.test_simulate import QUESTION

TONE_VOICE = Voice(espeak=None)
TOOL = {"type": "function", "name": "get_your_info", "description": "facts", "parameters": {"type": "object"}}


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_the_bots_client_gets_a_tool_backed_answer(tmp_path: Path, dialect: Literal["ga", "beta"]) -> None:
    heard: list[str] = []
    lines: list[str] = []
    async with RealtimeTestServer(StandInModel(TONE_VOICE, heard.append), dialect=dialect) as server:
        options = SimulationOptions(
            QUESTION, tmp_path / "a.wav", url=server.url, api_key=Secret("test-key"), dialect=dialect, pace=4.0
        )
        assert await run_simulation(options, lines.append) == EXIT_OK, lines
    assert server.schema_problems == [] and server.script_errors == []
    assert heard[:3] == [
        f"a client connected ({dialect.upper()})",
        "heard 1.4 s of speech",
        f'called get_your_info({{"query": "{FIXED_QUERY}"}})',
    ]
    assert heard[3:] == ["said: My favorite food is spicy miso ramen.", "the client left"]
    assert "user: (1.4 s of speech; the local server recognises no words)" in lines
    assert "assistant: My favorite food is spicy miso ramen." in lines
    assert server.peers[0].session["tools"][0]["name"] == "get_your_info"


def test_tool_output_becomes_sentences() -> None:
    assert sentence_for('{"favorite_food": "ramen", "age": 24}') == "My favorite food is ramen. My age is 24."
    assert sentence_for('{"error": "unknown topic", "known_topics": ["age"]}') == "I could not look that up."
    assert sentence_for("not json") == "I could not look that up."


class RawClient:
    """A minimal Realtime client: sends events, reads server events until one of a kind arrives."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.seen: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(event))

    async def speak(self, speech_ms: int = 600, silence_ms: int = 700) -> None:
        audio = bytes(200 * BYTES_PER_MS) + tone_pcm16(speech_ms) + bytes(silence_ms * BYTES_PER_MS)
        for start in range(0, len(audio), 100 * BYTES_PER_MS):
            chunk = base64.b64encode(audio[start : start + 100 * BYTES_PER_MS]).decode()
            await self.send({"type": "input_audio_buffer.append", "audio": chunk})

    async def until(self, kind: str, timeout_s: float = UNIT_S) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            while True:
                event: dict[str, Any] = json.loads(await self.socket.recv())
                self.seen.append(event)
                if event["type"] == kind:
                    return event

        return await asyncio.wait_for(read(), timeout_s)

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.seen]


@asynccontextmanager
async def raw_session(session: dict[str, Any]) -> AsyncIterator[RawClient]:
    async with RealtimeServer(StandInModel(TONE_VOICE)) as server, connect(server.url) as socket:
        client = RawClient(socket)
        await client.until("session.created")
        await client.send({"type": "session.update", "session": session})
        await client.until("session.updated")
        yield client


def ga_session(turn_detection: dict[str, Any] | None, tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "realtime", "audio": {"input": {"turn_detection": turn_detection}}, "tools": tools}


async def test_without_create_response_the_answer_waits_for_response_create() -> None:
    detection = {"type": "server_vad", "silence_duration_ms": 300, "create_response": False}
    async with raw_session(ga_session(detection, [TOOL])) as client:
        await client.speak()
        stopped = await client.until("input_audio_buffer.speech_stopped")
        assert 700 <= stopped["audio_end_ms"] <= 860  # 200 ms of quiet, then 600 ms of speech
        await client.until("input_audio_buffer.committed")
        with pytest.raises(TimeoutError):
            await client.until("response.created", timeout_s=0.3)
        await client.send({"type": "response.create", "response": {"metadata": {"bot_request": "req_1"}}})
        created = await client.until("response.created")
        assert created["response"]["metadata"] == {"bot_request": "req_1"}  # echoed, as the API does
        call = await client.until("response.function_call_arguments.done")
        assert json.loads(call["arguments"]) == {"query": FIXED_QUERY}
        await client.until("response.done")
        output = {"type": "function_call_output", "call_id": call["call_id"], "output": '{"age": 24}'}
        await client.send({"type": "conversation.item.create", "item": output})
        await client.send({"type": "response.create", "response": {"metadata": {"bot_request": "req_2"}}})
        assert (await client.until("response.created"))["response"]["metadata"] == {"bot_request": "req_2"}
        transcript = await client.until("response.output_audio_transcript.done")
        assert transcript["transcript"] == "My age is 24."
        await client.until("response.done")
    audio = [e for e in client.seen if e["type"] == "response.output_audio.delta"]
    assert sum(len(base64.b64decode(e["delta"])) for e in audio) == TONE_MS * BYTES_PER_MS


async def test_without_the_tool_a_turn_gets_a_fixed_sentence() -> None:
    async with raw_session(ga_session({"type": "server_vad", "silence_duration_ms": 300}, [])) as client:
        await client.speak()
        transcript = await client.until("response.output_audio_transcript.done")
    assert transcript["transcript"] == NO_TOOL_ANSWER
    assert "response.function_call_arguments.done" not in client.kinds()


async def test_a_malformed_session_gets_the_defaults_not_a_crash() -> None:
    session = {"type": "realtime", "audio": "loud", "tools": "all", "turn_detection": {"silence_duration_ms": "soon"}}
    async with raw_session(session) as client:
        await client.speak()
        transcript = await client.until("response.output_audio_transcript.done")
    assert transcript["transcript"] == NO_TOOL_ANSWER


async def test_a_response_create_without_a_turn_gets_a_greeting() -> None:
    async with raw_session(ga_session({"type": "server_vad"}, [TOOL])) as client:
        await client.send({"type": "response.create"})
        transcript = await client.until("response.output_audio_transcript.done")
    assert transcript["transcript"] == REQUEST_ANSWER


async def test_manual_turns_are_answered_after_commit_and_response_create() -> None:
    async with raw_session(ga_session(None, [TOOL])) as client:
        await client.speak()
        await asyncio.sleep(0.2)
        assert "input_audio_buffer.speech_started" not in client.kinds()  # no server VAD with turn_detection null
        await client.send({"type": "input_audio_buffer.commit"})
        await client.send({"type": "response.create"})
        call = await client.until("response.function_call_arguments.done")
    assert call["name"] == "get_your_info"


async def test_a_message_that_is_not_an_event_is_an_error_event_and_the_session_goes_on() -> None:
    async with raw_session(ga_session({"type": "server_vad"}, [])) as client:
        await client.socket.send("not json")
        error = await client.until("error")
        assert error["error"]["code"] == "invalid_event"
        await client.send({"type": "response.create"})
        await client.until("response.done")


def test_the_tone_is_steady_and_fades_in_and_out() -> None:
    from bot.fakeserver.voice import tone

    samples = np.frombuffer(tone(), dtype="<i2").astype(np.float64)
    assert len(samples) == 24 * TONE_MS and abs(samples[0]) < 50 and abs(samples[-1]) < 50
    middle = samples[len(samples) // 4 : 3 * len(samples) // 4]
    assert 0.25 < np.max(np.abs(middle)) / 32768 < 0.35
