"""The local Realtime test server (``tests/realtime/server.py``) in a process of its own, scripted for a benchmark.

The server runs apart from the bot so that the bot's CPU time and memory are its own; both use
``time.monotonic`` (``CLOCK_MONOTONIC``, one clock for every process on the machine), so a server-side timestamp and a
bot-side one can be subtracted. A conversation names itself with ``?conv=N`` in the URL.

Scripts:

- ``load``: per connection, forever: wait for the user's turn (the test server's energy VAD), then answer with a
  tone in ``chunk_ms`` deltas, paced at ``pace`` × real time. Records when the first delta of each answer was sent.
- ``wire``: what :mod:`bench.wire` needs of the whole bot, per connection, forever: wait for the user's turn (the
  energy VAD), wait for the bot's own ``response.create`` (the guild session labels the turn and asks for the
  answer), think ``model_delay_ms``, then answer like ``load``. Item ids are unique across connections
  (``item_msg_c<N>_<n>``), so the bot's reads pair with these records without a per-guild URL. Records per turn
  (:class:`WireTurn` fields): when the append holding the end of the speech arrived, ``speech_stopped`` sent,
  ``response.create`` arrived, the first delta sent.
- ``tool_turn``: ``turns`` times: a response calling ``get_your_info``; records when its
  ``response.function_call_arguments.done`` was sent and when the function output and the follow-up
  ``response.create`` arrived (timestamped as soon as each message is parsed, before the server's schema check).

Every client event except ``input_audio_buffer.append`` is still checked against the official ``openai`` models
(appends are checked by the tests; at 50 per second per conversation the check would be the server's main cost).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import multiprocessing.connection
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import tests.realtime.server as test_server
from tests.realtime.schema import schema_problems
from tests.realtime.server import BYTES_PER_MS, Peer, RealtimeTestServer, Script, tone_pcm16

#: How long the parent waits for the server process to start or to report.
STARTUP_TIMEOUT_S = 60.0
#: The arguments every get_your_info call carries in the tool-turn script.
TOOL_ARGUMENTS = '{"query": "favorite food"}'


@dataclass
class ServerRecords:
    """What the server process measured, sent back to the bench when it stops."""

    first_delta_sent_s: dict[str, float] = field(default_factory=dict)  # "conv/item_id" -> monotonic s
    tool_turns: list[dict[str, float]] = field(default_factory=list)  # per turn: monotonic s of each step
    wire_turns: list[dict[str, Any]] = field(default_factory=list)  # per answered turn (the ``wire`` script)
    cpu_s: float = 0.0
    connections: int = 0
    schema_problems: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)


def conversation_of(peer: Peer) -> str:
    """The ``conv`` query parameter of the connection's URL (``"?"`` without one)."""
    values = parse_qs(urlparse(peer.path).query).get("conv")
    return values[0] if values else "?"


_receipts: dict[str, float] = {}
#: When each client event (but appends) was parsed, by ``id(event)``: the ``wire`` script pops its own.
_receipt_by_event: dict[int, float] = {}


def _install_receipt_clock() -> None:
    """Timestamp each client event as soon as the server parsed it, and skip the schema check for appends."""

    def timed_check(event: dict[str, Any], dialect: str) -> list[str]:
        kind = str(event.get("type"))
        if kind == "input_audio_buffer.append":
            return []
        _receipts[kind] = _receipt_by_event[id(event)] = time.monotonic()
        return schema_problems(event, dialect)

    vars(test_server)["schema_problems"] = timed_check  # the name the server's reader looks up


def _load_script(records: ServerRecords, answer_ms: int, chunk_ms: int, pace: float, vad_silence_ms: int) -> Script:
    answer = tone_pcm16(answer_ms)
    pause_s = chunk_ms / 1000 / pace

    async def script(peer: Peer) -> None:
        conversation = conversation_of(peer)

        def first_delta(item_id: str) -> None:  # the instant it goes to the socket (the bot may read it first)
            records.first_delta_sent_s[f"{conversation}/{item_id}"] = time.monotonic()

        await peer.configured.wait()
        while True:
            await peer.wait_for_user_turn(silence_ms=vad_silence_ms, timeout_s=3600.0)
            peer.audio.clear()  # the next turn is looked for in the audio that follows
            response_id = await peer.start_response()
            await peer.stream_audio(
                response_id, answer, None, chunk_ms=chunk_ms, pause_s=pause_s, on_first_delta=first_delta
            )
            await peer.finish_response(response_id, usage=False)

    return script


class _StampedAudio(asyncio.Event):
    """The peer's "audio arrived" event, also stamping (monotonic s, stream ms received so far) on each append."""

    def __init__(self, peer: Peer, log: list[tuple[float, int]]) -> None:
        super().__init__()
        self._peer = peer
        self._log = log

    def set(self) -> None:
        self._log.append((time.monotonic(), self._peer.audio_base_ms + len(self._peer.audio) // BYTES_PER_MS))
        super().set()


def _wire_script(
    records: ServerRecords, answer_ms: int, chunk_ms: int, pace: float, vad_silence_ms: int, model_delay_ms: int
) -> Script:
    answer = tone_pcm16(answer_ms)
    pause_s = chunk_ms / 1000 / pace
    numbers = itertools.count()

    async def script(peer: Peer) -> None:
        number, ids = next(numbers), itertools.count(1)
        vars(peer)["new_id"] = lambda prefix: f"{prefix}_c{number}_{next(ids)}"  # unique across connections
        audio_log: list[tuple[float, int]] = []
        vars(peer)["_audio_changed"] = _StampedAudio(peer, audio_log)  # the event the peer's reader sets
        await peer.configured.wait()
        while True:
            _start_ms, end_ms = await peer.wait_for_user_turn(silence_ms=vad_silence_ms, timeout_s=3600.0)
            stopped_s = time.monotonic()  # speech_stopped and committed were just sent
            last_voice_in_s = next((t for t, ms in audio_log if ms >= end_ms), stopped_s)
            audio_log.clear()
            peer.consume_audio()
            while True:
                event = await peer.next_event(timeout_s=3600.0)
                received_s = _receipt_by_event.pop(id(event), time.monotonic())
                if event.get("type") == "response.create":
                    break
            await asyncio.sleep(model_delay_ms / 1000)
            response_id = await peer.start_response()
            first: dict[str, float] = {}

            def first_delta(_item: str, first: dict[str, float] = first) -> None:
                first.setdefault("s", time.monotonic())

            item_id = await peer.stream_audio(
                response_id,
                answer,
                None,
                chunk_ms=chunk_ms,
                pause_s=pause_s,
                on_first_delta=first_delta,
            )
            await peer.finish_response(response_id, usage=False)
            records.wire_turns.append(
                {
                    "item_id": item_id,
                    "last_voice_in_s": last_voice_in_s,
                    "stopped_sent_s": stopped_s,
                    "create_in_s": received_s,
                    "first_delta_sent_s": first["s"],
                }
            )

    return script


def _tool_turn_script(records: ServerRecords, turns: int) -> Script:
    async def script(peer: Peer) -> None:
        await peer.configured.wait()
        for _ in range(turns):
            (call_id,) = await peer.call_tools([("get_your_info", TOOL_ARGUMENTS)])
            sent_s = time.monotonic()
            await peer.finish_response(peer.last_response_id, usage=False)
            output = await peer.expect("conversation.item.create", timeout_s=30.0)
            assert output["item"]["call_id"] == call_id, output
            output_s = _receipts["conversation.item.create"]
            await peer.expect("response.create", timeout_s=30.0)
            create_s = _receipts["response.create"]
            records.tool_turns.append({"arguments_done_sent_s": sent_s, "output_s": output_s, "create_s": create_s})
            await peer.finish_response(await peer.start_response(), usage=False)  # the spoken answer, short
            await asyncio.sleep(0.01)
        await asyncio.Event().wait()

    return script


async def _serve(kind: str, params: dict[str, Any], pipe: multiprocessing.connection.Connection) -> None:
    records = ServerRecords()
    if kind == "load":
        script = _load_script(records, **params)
    elif kind == "wire":
        script = _wire_script(records, **params)
    elif kind == "tool_turn":
        script = _tool_turn_script(records, **params)
    else:
        raise ValueError(f"unknown script {kind!r}")
    _install_receipt_clock()
    cpu_start_s = time.process_time()
    async with RealtimeTestServer(script) as server:
        pipe.send(server.url)
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"
        records.cpu_s = time.process_time() - cpu_start_s
        records.connections = len(server.peers)
        records.schema_problems = server.schema_problems[:20]
        records.script_errors = [repr(error)[:300] for error in server.script_errors[:20]]
        for peer in server.peers:  # end the scripts' waits: close every connection
            with contextlib.suppress(Exception):
                await peer.connection.close()
    pipe.send(records)


def _process_main(kind: str, params: dict[str, Any], pipe: multiprocessing.connection.Connection) -> None:
    asyncio.run(_serve(kind, params, pipe))


class ServerProcess:
    """``with ServerProcess("load", {...}) as server: server.url ... records = server.stop()``."""

    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_process_main, args=(kind, params, child), daemon=True)
        self._process.start()
        child.close()
        if not self._pipe.poll(STARTUP_TIMEOUT_S):
            self._end()
            raise RuntimeError("the Realtime test server process did not start")
        self.url: str = self._pipe.recv()
        self._records: ServerRecords | None = None

    def stop(self) -> ServerRecords:
        """Stop serving and return what the server recorded."""
        if self._records is None:
            self._pipe.send("stop")
            if not self._pipe.poll(STARTUP_TIMEOUT_S):
                self._end()
                raise RuntimeError("the Realtime test server process did not report")
            self._records = self._pipe.recv()
            self._process.join(STARTUP_TIMEOUT_S)
        return self._records

    def _end(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(STARTUP_TIMEOUT_S)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._records is None:
            with contextlib.suppress(Exception):
                self.stop()
        self._end()
