"""The asyncio driver against the local Realtime test server (real WebSockets on loopback)."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.realtime import outputs as out
from tests.realtime.conftest import ServerFactory
from tests.realtime.helpers import collect_until, has, of_type, session_for
from tests.realtime.server import Peer, idle, tone_pcm16


async def tool_turn(peer: Peer) -> None:
    """The user speaks; the model calls get_your_info, then answers with audio once it has the output."""
    await peer.wait_audio_ms(100)
    response_id = await peer.start_response()
    [call_id] = await peer.call_tools([("get_your_info", '{"query": "favorite food"}')], response_id=response_id)
    created = await peer.expect("conversation.item.create")  # the output may come while the response is active
    assert created["item"] == {"type": "function_call_output", "call_id": call_id, "output": created["item"]["output"]}
    assert "ramen" in created["item"]["output"].lower() or "food" in created["item"]["output"].lower()
    await asyncio.sleep(0.2)
    assert peer._queue.empty(), "response.create was sent while the response was still active"
    await peer.finish_response(response_id)
    await peer.expect("response.create")
    await peer.answer_with_audio(tone_pcm16(300), "My favourite food is ramen.")
    await idle(peer)


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_a_tool_call_turn_sends_the_output_then_one_response_create(
    realtime_server: ServerFactory, dialect: str
) -> None:
    async with realtime_server(tool_turn, dialect=dialect) as server:
        session = session_for(server)
        await session.start()
        session.push_audio(tone_pcm16(200))
        events = await collect_until(session, has(out.AssistantTranscript))
        await session.close()
    [call] = of_type(events, out.ToolCallFinished)
    assert call.name == "get_your_info" and call.ok and json.loads(call.arguments) == {"query": "favorite food"}
    assert of_type(events, out.AssistantTranscript)[0].text == "My favourite food is ramen."
    audio = b"".join(e.pcm16 for e in of_type(events, out.AssistantAudio))
    assert audio == tone_pcm16(300)
    peer = server.peers[0]
    assert peer.headers["Authorization"] == "Bearer test-key"
    assert ("OpenAI-Beta" in peer.headers) == (dialect == "beta")
    kinds = [e["type"] for e in peer.received if e["type"] != "input_audio_buffer.append"]
    assert kinds == ["session.update", "conversation.item.create", "response.create"]
    assert [e["type"] for e in peer.received].count("response.create") == 1
    assert server.schema_problems == []
