"""The server side of one Realtime connection: client events in, GA server events out, audio collected.

A reader task (:meth:`Peer.read`) answers ``session.update`` with ``session.updated``, collects the audio of
``input_audio_buffer.append`` and queues every other client event for whoever drives the peer (a *script*).
Scripts talk GA; on a beta server the peer renames server events on the way out. The building blocks are
:meth:`Peer.expect`, :meth:`Peer.wait_for_user_turn` (a tiny energy VAD), :meth:`Peer.call_tools`,
:meth:`Peer.stream_audio`, :meth:`Peer.answer_with_audio`, ...
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers

from bot.realtime.events import GA_TO_BETA_NAMES

if TYPE_CHECKING:
    from bot.fakeserver.server import RealtimeServer

_log = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
#: 24 kHz mono pcm16: bytes per millisecond.
BYTES_PER_MS = 48
#: The energy VAD's defaults: RMS (full scale 1.0) of a "loud" 20 ms block, and the quiet that ends a turn.
VAD_THRESHOLD = 0.02
VAD_SILENCE_MS = 500
_VAD_BLOCK_MS = 20
#: Quiet scanned before any speech is dropped past this much, so a long silent connection does not grow memory.
QUIET_KEPT_MS = 60_000

#: The token counts a response reports when asked to (``usage=True``): made up, for clients' usage accounting.
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
    """A sine tone, 24 kHz mono pcm16."""
    t = np.arange(SAMPLE_RATE * duration_ms // 1000) / SAMPLE_RATE
    return (np.sin(2 * np.pi * frequency_hz * t) * amplitude * 32767).astype("<i2").tobytes()


@dataclass
class Peer:
    """The server side of one connection. ``wait_s`` (the server's) bounds every wait not given a timeout."""

    connection: ServerConnection
    server: RealtimeServer
    received: list[dict[str, Any]] = field(default_factory=list)
    #: The input audio not yet consumed (24 kHz mono pcm16); ``audio_base_ms`` is the stream time of its start.
    audio: bytearray = field(default_factory=bytearray)
    audio_base_ms: int = 0
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

    @property
    def session(self) -> dict[str, Any]:
        """The ``session`` of the last ``session.update`` (empty before one)."""
        if not self.session_updates:
            return {}
        session = self.session_updates[-1].get("session")
        return session if isinstance(session, dict) else {}

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids)}"

    def _timeout(self, timeout_s: float | None) -> float | None:
        """The bound of a wait: the server's ``wait_s`` when not given; ``inf`` waits on (None for asyncio)."""
        wait_s = self.server.wait_s if timeout_s is None else timeout_s
        return None if wait_s == float("inf") else wait_s

    # -- receiving ---------------------------------------------------------------------------------------------

    async def read(self) -> None:
        """Read client events until the connection closes (run by the server as a task)."""
        async for message in self.connection:
            try:
                event = json.loads(message)
            except ValueError:
                event = None
            if not isinstance(event, dict):
                self.server.on_invalid_message("a client message is not a JSON object")
                await self.error("invalid_event", "a client event must be a JSON object")
                continue
            self.received.append(event)
            self.server.on_client_event(event)
            kind = event.get("type")
            if kind == "session.update" and not self.server.hold_updates:
                self.session_updates.append(event)
                refusal = self.server.refuse_session_update(event, len(self.session_updates))
                if refusal is not None:
                    await self._refuse_update(event, *refusal)
                    continue
                await self.send({"type": "session.updated", "session": event.get("session", {})})
                self.configured.set()
                continue
            if kind == "input_audio_buffer.append":
                try:
                    self.audio += base64.b64decode(event.get("audio", ""), validate=True)
                except ValueError:
                    self.server.on_invalid_message("input_audio_buffer.append without base64 audio")
                    await self.error("invalid_audio", "input_audio_buffer.append needs base64 pcm16 audio")
                    continue
                self._audio_changed.set()
                continue
            await self._queue.put(event)

    async def _refuse_update(self, event: dict[str, Any], code: str, message: str) -> None:
        """Answer a ``session.update`` with an ``error`` naming it, as the API does for an invalid setting."""
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

    async def expect(self, kind: str, timeout_s: float | None = None) -> dict[str, Any]:
        """The next queued client event, which must be of type ``kind``."""
        event = await asyncio.wait_for(self._queue.get(), self._timeout(timeout_s))
        assert event.get("type") == kind, f"expected {kind}, got {event}"
        return event

    async def next_event(self, timeout_s: float | None = None) -> dict[str, Any]:
        return await asyncio.wait_for(self._queue.get(), self._timeout(timeout_s))

    async def wait_audio_ms(self, ms: int, timeout_s: float | None = None) -> None:
        async def enough() -> None:
            while len(self.audio) < ms * BYTES_PER_MS:
                self._audio_changed.clear()
                await self._audio_changed.wait()

        await asyncio.wait_for(enough(), self._timeout(timeout_s))

    def consume_audio(self) -> None:
        """Drop the audio received so far; later turns are looked for in what follows (stream times go on)."""
        self.audio_base_ms += len(self.audio) // BYTES_PER_MS
        del self.audio[:]

    async def wait_for_user_turn(
        self, *, threshold: float = VAD_THRESHOLD, silence_ms: int = VAD_SILENCE_MS, timeout_s: float | None = None
    ) -> tuple[int, int]:
        """A tiny server VAD over :attr:`audio`: speech starts when a 20 ms block is louder than ``threshold`` (RMS)
        and stops after ``silence_ms`` of quiet. Sends speech_started/stopped and committed; returns (start_ms,
        end_ms) in stream time. ``timeout_s`` defaults to six times the server's ``wait_s``; ``inf`` waits on."""
        block = _VAD_BLOCK_MS * BYTES_PER_MS
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
                    now_ms = self.audio_base_ms + position // BYTES_PER_MS
                    if start_ms is None and not loud and position >= QUIET_KEPT_MS * BYTES_PER_MS:
                        self.audio_base_ms += position // BYTES_PER_MS
                        del self.audio[:position]
                        position = 0
                    if start_ms is None and loud:
                        start_ms = now_ms - _VAD_BLOCK_MS
                        await self.send(
                            {
                                "type": "input_audio_buffer.speech_started",
                                "event_id": self.new_id("ev"),
                                "audio_start_ms": start_ms,
                                "item_id": item_id,
                            }
                        )
                    elif start_ms is not None:
                        quiet_ms = 0 if loud else quiet_ms + _VAD_BLOCK_MS
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

        turn = await asyncio.wait_for(scan(), self._timeout(6 * self.server.wait_s if timeout_s is None else timeout_s))
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

    async def start_response(self, request: Mapping[str, Any] | None = None) -> str:
        """``response.created``; for the client's ``response.create`` ``request``, with its metadata echoed, as the
        API does."""
        response_id = self.new_id("resp")
        response: dict[str, Any] = {"id": response_id, "object": "realtime.response", "status": "in_progress"}
        metadata = (request or {}).get("response", {}).get("metadata")
        if metadata is not None:
            response["metadata"] = metadata
        await self.send({"type": "response.created", "event_id": self.new_id("ev"), "response": response})
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

    async def answer_with_audio(
        self, pcm16: bytes, transcript: str, *, usage: bool = True, request: Mapping[str, Any] | None = None
    ) -> tuple[str, str]:
        """A whole spoken response (to ``request``, see :meth:`start_response`); returns (response_id, item_id)."""
        response_id = await self.start_response(request)
        item_id = await self.stream_audio(response_id, pcm16, transcript)
        await self.finish_response(response_id, usage=usage)
        return response_id, item_id

    async def error(
        self,
        code: str,
        message: str,
        error_type: str = "invalid_request_error",
        *,
        about: Mapping[str, Any] | None = None,
    ) -> None:
        """An ``error`` event; ``about``: the client event it is about (its ``event_id`` is quoted, as the API does)."""
        event_id = (about or {}).get("event_id")
        await self.send(
            {
                "type": "error",
                "event_id": self.new_id("ev"),
                "error": {"type": error_type, "code": code, "message": message, "event_id": event_id},
            }
        )

    async def drop(self) -> None:
        """Close the TCP connection abruptly (no close frame), like a network failure."""
        self.connection.transport.abort()

    async def close(self, code: int, reason: str = "") -> None:
        """Close the WebSocket with ``code`` and ``reason`` (4001 for a bad key, 1008 for a policy, 1011...)."""
        await self.connection.close(code, reason)
