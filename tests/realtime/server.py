"""A local Realtime server for tests: the real wire protocol over real WebSockets on loopback, scriptable per test.

Each connection gets a :class:`Peer`. A reader task validates every client event against the official ``openai``
typed models of the server's dialect (problems collect in :attr:`RealtimeTestServer.schema_problems`), answers
``session.update`` with ``session.updated``, and queues everything else for the test's *script*: a coroutine
``script(peer)`` run once per connection. Scripts talk GA; a beta server renames server events on the way out.

Building blocks for scripts are the ``Peer`` methods: :meth:`Peer.expect`, :meth:`Peer.answer_with_audio`,
:meth:`Peer.call_tools`, :meth:`Peer.wait_for_user_turn` (a tiny energy VAD over the appended audio), ...
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from bot.realtime.events import GA_TO_BETA_NAMES
from tests.realtime.schema import schema_problems

#: Every test timeout scales from this unit.
UNIT_S = 5.0
SAMPLE_RATE = 24_000
BYTES_PER_MS = 48

Script = Callable[["Peer"], Awaitable[None]]

USAGE = {
    "total_tokens": 180,
    "input_tokens": 120,
    "output_tokens": 60,
    "input_token_details": {
        "text_tokens": 100,
        "audio_tokens": 20,
        "cached_tokens": 50,
        "cached_tokens_details": {"text_tokens": 30, "audio_tokens": 20},
    },
    "output_token_details": {"text_tokens": 10, "audio_tokens": 50},
}


def tone_pcm16(duration_ms: int, frequency_hz: float = 440.0, amplitude: float = 0.3) -> bytes:
    """A sine tone, 24 kHz mono pcm16: the "voice" of the test model."""
    t = np.arange(SAMPLE_RATE * duration_ms // 1000) / SAMPLE_RATE
    return (np.sin(2 * np.pi * frequency_hz * t) * amplitude * 32767).astype("<i2").tobytes()


@dataclass
class Peer:
    """The server side of one connection."""

    connection: ServerConnection
    server: RealtimeTestServer
    received: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    session_updates: list[dict[str, Any]] = field(default_factory=list)
    configured: asyncio.Event = field(default_factory=asyncio.Event)
    last_user_item_id: str = ""
    last_response_id: str = ""
    _queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    _audio_changed: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def headers(self) -> Headers:
        assert self.connection.request is not None
        return self.connection.request.headers

    @property
    def path(self) -> str:
        assert self.connection.request is not None
        return self.connection.request.path

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids)}"

    # -- receiving ---------------------------------------------------------------------------------------------

    async def _read(self) -> None:
        async for message in self.connection:
            event = json.loads(message)
            self.received.append(event)
            self.server.schema_problems += schema_problems(event, self.server.dialect)
            kind = event.get("type")
            if kind == "session.update" and not self.server.hold_updates:
                self.session_updates.append(event)
                refuse = self.server.refuse_update
                refusal = refuse(event, len(self.session_updates)) if refuse is not None else None
                if refusal is not None:
                    code, message = refusal
                    await self.send(
                        {
                            "type": "error",
                            "event_id": self.new_id("ev"),
                            "error": {
                                "type": "invalid_request_error",
                                "code": code,
                                "message": message,
                                "param": "session.audio.output.voice",
                                "event_id": event.get("event_id"),
                            },
                        }
                    )
                    continue
                await self.send({"type": "session.updated", "session": event.get("session", {})})
                self.configured.set()
                continue
            elif kind == "input_audio_buffer.append":
                self.audio += base64.b64decode(event["audio"])
                self._audio_changed.set()
                continue
            await self._queue.put(event)

    async def expect(self, kind: str, timeout_s: float = UNIT_S) -> dict[str, Any]:
        """The next queued client event, which must be of type ``kind``."""
        event = await asyncio.wait_for(self._queue.get(), timeout_s)
        assert event.get("type") == kind, f"expected {kind}, got {event}"
        return event

    async def next_event(self, timeout_s: float = UNIT_S) -> dict[str, Any]:
        return await asyncio.wait_for(self._queue.get(), timeout_s)

    async def wait_audio_ms(self, ms: int, timeout_s: float = UNIT_S) -> None:
        async def enough() -> None:
            while len(self.audio) < ms * BYTES_PER_MS:
                self._audio_changed.clear()
                await self._audio_changed.wait()

        await asyncio.wait_for(enough(), timeout_s)

    async def wait_for_user_turn(
        self, *, threshold: float = 0.02, silence_ms: int = 500, timeout_s: float = 6 * UNIT_S
    ) -> tuple[int, int]:
        """A tiny server VAD: speech starts when a 20 ms block is louder than ``threshold`` and stops after
        ``silence_ms`` of quiet. Sends speech_started/stopped and committed; returns (start_ms, end_ms)."""
        block = 20 * BYTES_PER_MS
        position = 0
        start_ms: int | None = None
        quiet_ms = 0
        item_id = self.new_id("item_user")

        async def scan() -> tuple[int, int]:
            nonlocal position, start_ms, quiet_ms
            while True:
                while len(self.audio) - position >= block:
                    samples = np.frombuffer(bytes(self.audio[position : position + block]), "<i2") / 32768.0
                    loud = float(np.sqrt(np.mean(samples**2))) > threshold
                    position += block
                    now_ms = position // BYTES_PER_MS
                    if start_ms is None and loud:
                        start_ms = now_ms - 20
                        await self.send(
                            {
                                "type": "input_audio_buffer.speech_started",
                                "event_id": self.new_id("ev"),
                                "audio_start_ms": start_ms,
                                "item_id": item_id,
                            }
                        )
                    elif start_ms is not None:
                        quiet_ms = 0 if loud else quiet_ms + 20
                        if quiet_ms >= silence_ms:
                            end_ms = now_ms - silence_ms
                            await self.send(
                                {
                                    "type": "input_audio_buffer.speech_stopped",
                                    "event_id": self.new_id("ev"),
                                    "audio_end_ms": end_ms,
                                    "item_id": item_id,
                                }
                            )
                            await self.send(
                                {
                                    "type": "input_audio_buffer.committed",
                                    "event_id": self.new_id("ev"),
                                    "item_id": item_id,
                                    "previous_item_id": None,
                                }
                            )
                            return start_ms, end_ms
                self._audio_changed.clear()
                await self._audio_changed.wait()

        turn = await asyncio.wait_for(scan(), timeout_s)
        self.last_user_item_id = item_id
        return turn

    # -- sending -----------------------------------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> None:
        """Send a GA-named server event (renamed for a beta server)."""
        if self.server.dialect == "beta":
            event = {**event, "type": GA_TO_BETA_NAMES.get(event["type"], event["type"])}
        await self.connection.send(json.dumps(event))

    async def send_raw(self, text: str) -> None:
        await self.connection.send(text)

    async def user_transcript(self, item_id: str, transcript: str) -> None:
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "event_id": self.new_id("ev"),
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
            }
        )

    async def start_response(self) -> str:
        response_id = self.new_id("resp")
        await self.send(
            {
                "type": "response.created",
                "event_id": self.new_id("ev"),
                "response": {"id": response_id, "object": "realtime.response", "status": "in_progress"},
            }
        )
        return response_id

    async def finish_response(
        self, response_id: str, status: str = "completed", usage: bool | dict[str, Any] = True
    ) -> None:
        """``response.done``; ``usage``: :data:`USAGE` (True), none (False) or the given object."""
        response: dict[str, Any] = {"id": response_id, "object": "realtime.response", "status": status}
        if usage:
            response["usage"] = USAGE if usage is True else usage
        await self.send({"type": "response.done", "event_id": self.new_id("ev"), "response": response})

    async def call_tools(self, calls: Sequence[tuple[str, str]], *, response_id: str | None = None) -> list[str]:
        """One response with a function call per (name, arguments); returns the call ids. Does not finish it."""
        response_id = response_id or await self.start_response()
        call_ids = []
        for index, (name, arguments) in enumerate(calls):
            item_id, call_id = self.new_id("item_fc"), self.new_id("call")
            call_ids.append(call_id)
            item = {"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": ""}
            await self.send(
                {
                    "type": "response.output_item.added",
                    "event_id": self.new_id("ev"),
                    "response_id": response_id,
                    "output_index": index,
                    "item": item,
                }
            )
            common = {"response_id": response_id, "item_id": item_id, "output_index": index, "call_id": call_id}
            await self.send({"type": "response.function_call_arguments.delta", **common, "delta": arguments})
            await self.send(
                {"type": "response.function_call_arguments.done", **common, "name": name, "arguments": arguments}
            )
        self.last_response_id = response_id
        return call_ids

    async def stream_audio(
        self,
        response_id: str,
        pcm16: bytes,
        transcript: str | None,
        *,
        chunk_ms: int = 100,
        pause_s: float = 0.0,
        on_first_delta: Callable[[str], None] | None = None,
    ) -> str:
        """An audio output item with ``pcm16`` in chunks and its transcript (none sent for ``None``); returns the
        item id. ``on_first_delta(item_id)`` runs just before the first chunk goes to the socket."""
        item_id = self.new_id("item_msg")
        await self.send(
            {
                "type": "response.output_item.added",
                "event_id": self.new_id("ev"),
                "response_id": response_id,
                "output_index": 0,
                "item": {"id": item_id, "type": "message", "role": "assistant", "content": []},
            }
        )
        common = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        step = chunk_ms * BYTES_PER_MS
        for start in range(0, len(pcm16), step):
            chunk = base64.b64encode(pcm16[start : start + step]).decode("ascii")
            if start == 0 and on_first_delta is not None:
                on_first_delta(item_id)
            await self.send(
                {"type": "response.output_audio.delta", "event_id": self.new_id("ev"), **common, "delta": chunk}
            )
            if pause_s:
                await asyncio.sleep(pause_s)
        await self.send({"type": "response.output_audio.done", "event_id": self.new_id("ev"), **common})
        if transcript is not None:
            await self.send(
                {
                    "type": "response.output_audio_transcript.done",
                    "event_id": self.new_id("ev"),
                    **common,
                    "transcript": transcript,
                }
            )
        return item_id

    async def answer_with_audio(self, pcm16: bytes, transcript: str, *, usage: bool = True) -> tuple[str, str]:
        """A whole spoken response; returns (response_id, item_id)."""
        response_id = await self.start_response()
        item_id = await self.stream_audio(response_id, pcm16, transcript)
        await self.finish_response(response_id, usage=usage)
        return response_id, item_id

    async def error(self, code: str, message: str, error_type: str = "invalid_request_error") -> None:
        await self.send(
            {
                "type": "error",
                "event_id": self.new_id("ev"),
                "error": {"type": error_type, "code": code, "message": message, "event_id": None},
            }
        )

    async def drop(self) -> None:
        """Close the TCP connection abruptly (no close frame), like a network failure."""
        self.connection.transport.abort()

    async def close(self, code: int, reason: str = "") -> None:
        """Close the WebSocket with ``code`` and ``reason`` (4001 for a bad key, 1008 for a policy, 1011...)."""
        await self.connection.close(code, reason)


class RealtimeTestServer:
    """Serve ``script`` on 127.0.0.1. Use as ``async with RealtimeTestServer(script) as server: server.url``."""

    def __init__(
        self,
        script: Script | Sequence[Script],
        *,
        dialect: str = "ga",
        api_key: str | None = "test-key",
        handshake_status: int | None = None,
        handshake_body: str = "",
        refuse_update: Callable[[dict[str, Any], int], tuple[str, str] | None] | None = None,
        hold_updates: bool = False,
    ) -> None:
        self._scripts = [script] if callable(script) else list(script)
        self.dialect = dialect
        self.api_key = api_key
        self.handshake_status = handshake_status
        self.handshake_body = handshake_body
        #: ``refuse_update(event, n)`` -> ``(code, message)`` refuses the connection's n-th session.update.
        self.refuse_update = refuse_update
        #: Queue session.update for the script instead of confirming it (a server that never confirms).
        self.hold_updates = hold_updates
        self.peers: list[Peer] = []
        self.schema_problems: list[str] = []
        self.script_errors: list[BaseException] = []
        self.script_done = asyncio.Event()
        self.rejected = 0
        #: Statuses to refuse the next handshakes with, in order (set by a script before it drops a connection).
        self.upcoming_statuses: list[int] = []
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"ws://{host}:{port}/v1/realtime"

    async def __aenter__(self) -> RealtimeTestServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._check_request, max_size=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), UNIT_S)

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        status = self.upcoming_statuses.pop(0) if self.upcoming_statuses else self.handshake_status
        if status is not None:
            self.rejected += 1
            return connection.respond(HTTPStatus(status), self.handshake_body)
        if self.api_key is not None:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ") or request.headers.get("api-key")
            if given != self.api_key:
                self.rejected += 1
                body = {"error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "bad key"}}
                return connection.respond(HTTPStatus.UNAUTHORIZED, json.dumps(body))
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        peer = Peer(connection, self)
        index = len(self.peers)
        self.peers.append(peer)
        script = self._scripts[min(index, len(self._scripts) - 1)]
        await peer.send({"type": "session.created", "event_id": peer.new_id("ev"), "session": {"id": "sess_1"}})
        reader = asyncio.ensure_future(peer._read())
        scripted = asyncio.ensure_future(script(peer))
        await asyncio.wait({reader, scripted}, return_when=asyncio.FIRST_COMPLETED)
        if not scripted.done():  # the client went away: the script has nobody to talk to
            scripted.cancel()
        await asyncio.wait({scripted})
        exc = scripted.exception() if not scripted.cancelled() else None
        if exc is not None and not isinstance(exc, ConnectionClosed):
            self.script_errors.append(exc)
        self.script_done.set()
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            await reader


async def idle(peer: Peer) -> None:
    """A script that only keeps the connection open."""
    await asyncio.Event().wait()
