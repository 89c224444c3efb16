"""Function-call turn overhead: ``response.function_call_arguments.done`` -> ``response.create``, for ``get_your_info``.

Two measurements:

- **protocol alone**: the sans-I/O :class:`~bot.realtime.protocol.RealtimeProtocol` is fed the server's messages; timed
  from handing it ``arguments.done`` to ``data_to_send()`` returning the function output and ``response.create``
  (the tool runs inline, and the ``response.done`` that lets the follow-up go is handed over at once);
- **loopback**: a :class:`~bot.realtime.driver.RealtimeSession` against the local Realtime server in its own process
  (:mod:`bench.loopback_server`). Server-side timestamps on one clock: ``arguments.done`` went to the socket (the
  server sends ``response.done`` right after it, as the API does) -> the function output arrived -> the follow-up
  ``response.create`` arrived. This adds the driver's tool thread hop, two socket trips and JSON both ways.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

from bench.loopback_server import TOOL_ARGUMENTS, ServerProcess
from bench.timing import Options, percentile
from bot.config import RealtimeConfig
from bot.persona import default_persona, persona_instructions, persona_tools
from bot.realtime import outputs as out
from bot.realtime.client_events import SessionSettings
from bot.realtime.driver import RealtimeSession
from bot.realtime.endpoint import endpoint_for
from bot.realtime.protocol import RealtimeProtocol
from bot.secret import Secret

TURNS = 300
QUICK_TURNS = 5
PROTOCOL_TURNS = 3000
#: How long the loopback run may take before it is reported as failed.
LOOPBACK_TIMEOUT_S = 120.0


def _settings() -> SessionSettings:
    tools = persona_tools(default_persona())
    return SessionSettings(instructions=persona_instructions(default_persona()), tools=tuple(tools.schemas()))


def _event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "event_id": "ev", **fields})


def _turn_messages(turn: int) -> dict[str, str]:
    """The server's messages for one tool-calling response and its follow-up answer."""
    response_id, follow_id = f"resp_{turn}", f"resp_{turn}_b"
    item_id, call_id = f"item_fc_{turn}", f"call_{turn}"
    common = {"response_id": response_id, "item_id": item_id, "output_index": 0, "call_id": call_id}
    item = {"id": item_id, "type": "function_call", "call_id": call_id, "name": "get_your_info", "arguments": ""}
    return {
        "created": _event("response.created", response={"id": response_id, "status": "in_progress"}),
        "item_added": _event("response.output_item.added", response_id=response_id, output_index=0, item=item),
        "delta": _event("response.function_call_arguments.delta", **common, delta=TOOL_ARGUMENTS),
        "arguments_done": _event(
            "response.function_call_arguments.done", **common, name="get_your_info", arguments=TOOL_ARGUMENTS
        ),
        "done": _event("response.done", response={"id": response_id, "status": "completed"}),
        "follow_created": _event("response.created", response={"id": follow_id, "status": "in_progress"}),
        "follow_done": _event("response.done", response={"id": follow_id, "status": "completed"}),
    }


def protocol_alone(turns: int) -> dict[str, Any]:
    """Per turn: wall µs from ``arguments.done`` in to ``response.create`` out, and the tool's own share."""
    protocol = RealtimeProtocol(_settings(), "ga")
    tools = persona_tools(default_persona())
    protocol.start()
    protocol.receive_text(_event("session.updated", session={}))
    protocol.data_to_send()
    totals_us: list[float] = []
    tool_us: list[float] = []
    cpu_start_s = time.process_time()
    for turn in range(turns):
        messages = _turn_messages(turn)
        for name in ("created", "item_added", "delta"):
            protocol.receive_text(messages[name])
        start_s = time.perf_counter()
        (call,) = protocol.receive_text(messages["arguments_done"])
        assert isinstance(call, out.ToolCallRequested)
        tool_start_s = time.perf_counter()
        result = tools.execute(call.name, call.arguments)
        tool_us.append((time.perf_counter() - tool_start_s) * 1e6)
        protocol.tool_output(call.call_id, result.output)
        protocol.receive_text(messages["done"])
        sent = protocol.data_to_send()
        totals_us.append((time.perf_counter() - start_s) * 1e6)
        if not result.ok or [json.loads(text)["type"] for text in sent] != [
            "conversation.item.create",
            "response.create",
        ]:
            raise RuntimeError(f"the protocol did not answer the tool call as expected: {sent}")
        protocol.receive_text(messages["follow_created"])
        protocol.receive_text(messages["follow_done"])
    cpu_us = (time.process_time() - cpu_start_s) * 1e6 / turns
    return {
        "turns": turns,
        "p50_us": round(percentile(totals_us, 0.5), 1),
        "p99_us": round(percentile(totals_us, 0.99), 1),
        "tool_p50_us": round(percentile(tool_us, 0.5), 1),
        "cpu_us_per_turn": round(cpu_us, 1),
    }


async def _drive_session(url: str, turns: int) -> dict[str, Any]:
    config = RealtimeConfig(provider="custom", url=url, api_key=Secret("test-key"), dialect="ga")
    session = RealtimeSession(endpoint_for(config), _settings(), persona_tools(default_persona()))
    await session.start()
    finished = 0
    failed = 0

    async def count() -> None:
        nonlocal finished, failed
        async for event in session.events():
            if isinstance(event, out.ToolCallFinished):
                finished += 1
                failed += not event.ok
                if finished == turns:
                    return

    try:
        await asyncio.wait_for(count(), LOOPBACK_TIMEOUT_S)
        await asyncio.wait_for(session.wait_until_idle(), LOOPBACK_TIMEOUT_S)
    finally:
        await session.close()
    return {"tool_calls_finished": finished, "tool_calls_failed": failed}


def loopback(turns: int) -> dict[str, Any]:
    """``turns`` tool-calling responses over a real WebSocket; server-side timestamps."""
    with ServerProcess("tool_turn", {"turns": turns}) as server:
        bot = asyncio.run(_drive_session(server.url, turns))
        records = server.stop()
    to_output = [(t["output_s"] - t["arguments_done_sent_s"]) * 1000 for t in records.tool_turns]
    to_create = [(t["create_s"] - t["arguments_done_sent_s"]) * 1000 for t in records.tool_turns]
    return {
        "turns": len(records.tool_turns),
        **bot,
        "output_p50_ms": round(percentile(to_output, 0.5), 3),
        "output_p99_ms": round(percentile(to_output, 0.99), 3),
        "create_p50_ms": round(percentile(to_create, 0.5), 3),
        "create_p99_ms": round(percentile(to_create, 0.99), 3),
        "create_max_ms": round(max(to_create, default=0.0), 3),
        "schema_problems": records.schema_problems,
        "script_errors": records.script_errors,
    }


def run(options: Options) -> dict[str, Any]:
    return {
        "protocol": protocol_alone(QUICK_TURNS if options.quick else PROTOCOL_TURNS),
        "loopback": loopback(QUICK_TURNS if options.quick else TURNS),
    }


def iter_markdown(result: dict[str, Any]) -> Iterator[str]:
    proto, wire = result["protocol"], result["loopback"]
    yield "## 4. Function-call turn overhead (`get_your_info`)"
    yield ""
    yield (
        "From `response.function_call_arguments.done` to the follow-up `response.create`. Protocol alone: the pure "
        "RealtimeProtocol, the tool run inline, `response.done` handed over at once. Loopback: a RealtimeSession "
        "against the local server (its own process), server-side timestamps on one clock; the server sends "
        "`response.done` right after `arguments.done`, as the API does."
    )
    yield ""
    yield "| measurement | turns | p50 | p99 | notes |"
    yield "| --- | ---: | ---: | ---: | --- |"
    yield (
        f"| protocol alone, arguments.done -> response.create | {proto['turns']} | {proto['p50_us']} µs "
        f"| {proto['p99_us']} µs | tool itself p50 {proto['tool_p50_us']} µs; CPU {proto['cpu_us_per_turn']} µs/turn |"
    )
    yield (
        f"| loopback, arguments.done sent -> function output received | {wire['turns']} | {wire['output_p50_ms']} ms "
        f"| {wire['output_p99_ms']} ms | tool run in a worker thread |"
    )
    yield (
        f"| loopback, arguments.done sent -> response.create received | {wire['turns']} | {wire['create_p50_ms']} ms "
        f"| {wire['create_p99_ms']} ms | max {wire['create_max_ms']} ms; {wire['tool_calls_failed']} failed calls, "
        f"{len(wire['schema_problems'])} schema problems |"
    )
