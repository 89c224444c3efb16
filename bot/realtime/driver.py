"""The asyncio driver: one WebSocket at a time around a :class:`~bot.realtime.protocol.RealtimeProtocol`.

It only shuttles data: a receive loop feeds the protocol, a send task writes what the protocol queues, tool calls
run in worker threads (so audio input is never blocked by a slow tool), and a supervisor reconnects with backoff,
renews the session before the provider's time limit and stops for good on a fatal error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from bot.realtime import outputs as out
from bot.realtime.client_events import SessionSettings
from bot.realtime.endpoint import Endpoint
from bot.realtime.entra import fetch_token
from bot.realtime.errors import (
    ConnectionFailed,
    RealtimeError,
    RejectedError,
    SessionClosed,
    close_error,
    handshake_error,
)
from bot.realtime.protocol import Bounds, RealtimeProtocol
from bot.realtime.retry import RetryPolicy, backoff_delay_s, renew_at_s, should_retry
from bot.realtime.server_text import shown
from bot.secret import redact
from bot.tools import ToolRegistry

_log = logging.getLogger(__name__)
_wire_log = logging.getLogger("bot.realtime.wire")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
RENEW_POLL_S = 0.5
RENEW_FORCE_BEFORE_END_S = 10.0
#: A new connection whose configuration is not confirmed within this long is dropped and retried.
READY_TIMEOUT_S = 10.0
#: The protocol's timers are checked this often (at most; more often when a bound is shorter).
TIMER_POLL_S = 0.25


class _HeaderSecretsFilter(logging.Filter):
    """Blanks header secrets (keys, tokens) in the websockets library's handshake debug log."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if len(secret) >= 4:
            self._secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self._secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_WIRE_FILTER = _HeaderSecretsFilter()
_wire_log.addFilter(_WIRE_FILTER)


class AudioSink(Protocol):
    """Where assistant audio plays (the Discord audio source, or the simulator's WAV writer).

    When a session has a sink it feeds it itself, in order, before it reports the audio as an event: so at a
    barge-in the sink knows exactly what it was given and what it has played.
    """

    def feed(self, item_id: str, pcm16_24k_mono: bytes) -> None: ...

    @property
    def is_playing(self) -> bool: ...

    def clear(self) -> dict[str, float]:
        """Stop at once, drop what is buffered; returns ``{item_id: milliseconds actually played}``."""


class RealtimeSession:
    """A Realtime conversation that survives dropped connections. Create, :meth:`start`, read :meth:`events`."""

    def __init__(
        self,
        endpoint: Endpoint,
        settings: SessionSettings,
        tools: ToolRegistry | None = None,
        *,
        sink: AudioSink | None = None,
        policy: RetryPolicy | None = None,
        now: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        open_timeout_s: float = READY_TIMEOUT_S,
        debug_wire: bool = False,
        bounds: Bounds | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._settings = settings
        self._tools = tools
        self._sink = sink
        self._policy = policy or RetryPolicy()
        self._now = now
        self._rand = rand
        self._open_timeout_s = open_timeout_s
        self._debug_wire = debug_wire
        self._bounds = bounds or Bounds()
        self._secrets = endpoint.secrets()
        self._proto = self._new_protocol(settings, None)
        self._ws: ClientConnection | None = None
        self._events: asyncio.Queue[out.Output] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._renew_now = asyncio.Event()
        self._ready = asyncio.Event()
        self._idle_waiters: list[asyncio.Future[bool]] = []
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False
        self._ended = False
        self._end_error: RealtimeError | None = None
        self.reconnects = 0
        self.dropped_audio_bytes = 0
        for secret in self._secrets:
            _WIRE_FILTER.add(secret)

    # -- application API ---------------------------------------------------------------------------------------

    @property
    def protocol(self) -> RealtimeProtocol:
        """The current connection's protocol state (read-only use: usage, history, stats)."""
        return self._proto

    async def start(self) -> None:
        """Connect and configure the session.

        Raises:
            RealtimeError: the first connection failed (unreachable, rejected key, unknown model...).
        """
        ws = await self._open()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(ws), name="realtime-session")
        ready = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait({ready, self._supervisor}, timeout=self._open_timeout_s, return_when="FIRST_COMPLETED")
        ready.cancel()
        if self._supervisor.done() and not self._ready.is_set():
            raise self._end_error or SessionClosed("the Realtime session ended before it was ready")
        if not self._ready.is_set():
            await self.close()
            raise ConnectionFailed("the Realtime server did not confirm the session configuration in time")

    def push_audio(self, pcm16_24k_mono: bytes) -> None:
        """Send 24 kHz mono pcm16 (dropped, and counted, while reconnecting). Never waits: the frame is queued for
        the send loop, so the voice client's room handler calls it directly for every frame, as the frame is delivered
        (no task per frame)."""
        if self._closed or self._ws is None or not self._proto.ready:
            self.dropped_audio_bytes += len(pcm16_24k_mono)
            return
        self._proto.push_audio(pcm16_24k_mono)
        self._wake.set()

    async def commit_audio(self) -> None:
        self._proto.commit_audio()
        self._wake.set()

    async def send_text(self, text: str) -> None:
        self._proto.send_text(text)
        self._wake.set()

    async def label_turn(self, previous_item_id: str | None, label: str) -> None:
        """Insert ``[label is speaking]`` before the user turn that follows ``previous_item_id``."""
        if self._closed or self._ws is None:
            return  # the turn belongs to a connection that is gone
        self._proto.label_turn(previous_item_id, label)
        self._wake.set()

    async def respond(self) -> None:
        """Ask for an answer now, or exactly once after the active response (the protocol's rule)."""
        self._proto.request_response()
        self._wake.set()

    async def interrupt(self, played_ms: Mapping[str, float]) -> None:
        """Stop the answer; the model keeps only what was played (``{item_id: ms}`` from the audio sink)."""
        self._proto.interrupt(played_ms)
        self._wake.set()

    async def update_settings(self, settings: SessionSettings) -> None:
        """Send new settings (the voice applies from the next session; a refusal keeps the previous ones)."""
        self._proto.update_settings(settings)
        self._wake.set()

    def set_tools(self, tools: ToolRegistry | None) -> None:
        """Run later tool calls with ``tools`` (send the matching schemas with :meth:`update_settings`)."""
        self._tools = tools

    async def reset(self) -> None:
        """Forget the conversation: open a fresh session without carrying the transcript (or an unanswered turn)
        over."""
        self._proto.history.clear()
        self._proto.forget_turn()
        self._renew_now.set()

    async def events(self) -> AsyncIterator[out.Output]:
        """Every output in order; ends after :class:`~bot.realtime.outputs.SessionEnded`."""
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, out.SessionEnded):
                return

    async def wait_until_idle(self) -> bool:
        """Wait until no response is active and no tool call is pending; False if the connection ended first."""
        if self._is_idle():
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(waiter)
        return await waiter

    async def close(self) -> None:
        """Close the socket and stop reconnecting; every waiter is resolved. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._ws is not None:
            await self._ws.close()
        if self._supervisor is not None and self._supervisor is not asyncio.current_task():
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for task in list(self._tool_tasks):
            task.cancel()
        self._end(None)

    # -- internals ---------------------------------------------------------------------------------------------

    def _end(self, error: RealtimeError | None) -> None:
        self._resolve_waiters(False)
        if not self._ended:
            self._ended = True
            self._end_error = error
            self._events.put_nowait(out.SessionEnded(None if error is None else error.message))

    def _is_idle(self) -> bool:
        return not self._proto.busy and not self._tool_tasks

    def _resolve_waiters(self, value: bool) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(value)

    async def _headers(self) -> dict[str, str]:
        """The handshake headers; with an Entra token command, a fresh bearer token for this connection."""
        if not self._endpoint.token_command:
            return self._endpoint.headers
        token = await fetch_token(self._endpoint.token_command)
        if len(token) >= 4 and token not in self._secrets:
            self._secrets = (*self._secrets, token)
            _WIRE_FILTER.add(token)
        return {**self._endpoint.headers, "Authorization": f"Bearer {token}"}

    async def _open(self) -> ClientConnection:
        headers = await self._headers()
        try:
            return await connect(
                self._endpoint.url,
                additional_headers=headers,
                open_timeout=self._open_timeout_s,
                max_size=MAX_MESSAGE_BYTES,
                logger=_wire_log,
                proxy=None if self._endpoint.url.startswith("ws://") else True,
            )
        except InvalidStatus as exc:
            code = _body_code(exc.response.body)
            raise handshake_error(exc.response.status_code, shown(code, self._secrets, 80) if code else None) from None
        except InvalidURI:
            raise RejectedError(f"invalid Realtime URL {self._endpoint.describe()!r}") from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise ConnectionFailed(
                f"cannot reach the Realtime server at {self._endpoint.describe()} ({type(exc).__name__})"
            ) from None

    async def _supervise(self, ws: ClientConnection) -> None:
        attempt = 0
        while not self._closed:
            connected_at_s = self._now()
            try:
                error = await self._serve(ws)
            except Exception as exc:  # a bug or an unexpected library error must not kill the session silently
                _log.exception("Realtime connection failed unexpectedly")
                error = ConnectionFailed(f"the Realtime connection failed ({type(exc).__name__})")
            if self._closed:
                return
            self._drop_connection_state()
            if self._now() - connected_at_s >= self._policy.stable_after_s:
                attempt = 0
            while True:
                if error is None:  # a planned renewal: reconnect at once
                    delay_s, reason = 0.0, "session renewal"
                else:
                    attempt += 1
                    if not should_retry(error, attempt, self._policy):
                        _log.error("Realtime session stopped: %s", error.message)
                        self._events.put_nowait(out.ErrorReported(error.code, error.message, fatal=True))
                        self._end(error)
                        return
                    delay_s, reason = backoff_delay_s(attempt, self._policy, self._rand), error.message
                _log.info("reconnecting in %.1f s (attempt %d): %s", delay_s, attempt, reason)
                self._events.put_nowait(out.Reconnecting(attempt, delay_s, reason))
                await asyncio.sleep(delay_s)
                try:
                    ws = await self._open()
                    break
                except RealtimeError as exc:
                    error = exc
            self.reconnects += 1

    def _new_protocol(self, settings: SessionSettings, old: RealtimeProtocol | None) -> RealtimeProtocol:
        return RealtimeProtocol(
            settings,
            self._endpoint.dialect,
            history=old.history if old is not None else (),
            usage=old.usage if old is not None else None,
            model=old.model if old is not None else self._endpoint.model,
            carry=old.carry() if old is not None else None,
            debug_wire=self._debug_wire,
            secrets=self._secrets,
            bounds=self._bounds,
            now=self._now,
        )

    async def _serve(self, ws: ClientConnection) -> RealtimeError | None:
        """Run one connection until it drops (the error), a renewal is due (None), or a fatal server error.

        The new connection's protocol inherits the settings, the conversation and any unanswered turn."""
        self._ws = ws
        old = self._proto
        self._proto = self._new_protocol(old.settings, old) if old.started else old
        self._proto.start()
        self._ready.clear()
        self._renew_now.clear()
        self._wake.set()
        connected_at_s = self._now()
        renew_at = renew_at_s(connected_at_s, self._endpoint.max_session_s, self._policy)
        # Past this, renew even mid-answer: the server would cut the session a moment later anyway.
        renew_by = (
            connected_at_s
            + self._endpoint.max_session_s
            - min(RENEW_FORCE_BEFORE_END_S, self._policy.renew_margin_s / 2)
        )
        tasks = {
            asyncio.ensure_future(self._send_loop(ws)),
            asyncio.ensure_future(self._receive_loop(ws)),
            asyncio.ensure_future(self._renew_when_due(renew_at, renew_by)),
            asyncio.ensure_future(self._watch(connected_at_s)),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when="FIRST_COMPLETED")
            return next(iter(done)).result()
        finally:
            for task in tasks:
                task.cancel()
            self._ws = None
            await ws.close()

    async def _send_loop(self, ws: ClientConnection) -> RealtimeError | None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                for text in self._proto.data_to_send():
                    await ws.send(text)
        except ConnectionClosed as exc:
            return self._close_error(exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else "")

    async def _receive_loop(self, ws: ClientConnection) -> RealtimeError | None:
        try:
            async for message in ws:
                for event in self._proto.receive_text(message):
                    fatal = self._dispatch(event)
                    if fatal is not None:
                        return fatal
                self._wake.set()
                if self._is_idle():
                    self._resolve_waiters(True)
        except ConnectionClosed:
            pass
        return self._close_error(ws.close_code, ws.close_reason or "")

    def _close_error(self, code: int | None, reason: str) -> RealtimeError:
        return close_error(code, shown(reason, self._secrets) if reason else "")

    async def _watch(self, connected_at_s: float) -> RealtimeError | None:
        """Enforce the bounds: the configuration must be confirmed in time; the protocol's timers must run."""
        poll_s = min(TIMER_POLL_S, self._bounds.shortest_s / 4)
        while True:
            await asyncio.sleep(poll_s)
            if not self._proto.ready and self._now() - connected_at_s >= self._open_timeout_s:
                return ConnectionFailed(
                    f"the Realtime server did not confirm the session configuration within {self._open_timeout_s:g} s"
                )
            events = self._proto.check_timers()
            for event in events:
                fatal = self._dispatch(event)
                if fatal is not None:
                    return fatal
            self._wake.set()
            if events and self._is_idle():
                self._resolve_waiters(True)  # an answer given up leaves the session idle

    async def _renew_when_due(self, renew_at: float, renew_by: float) -> RealtimeError | None:
        """Return when a renewal is due: after ``renew_at`` once no answer is in flight, at ``renew_by`` anyway."""
        while not self._renew_now.is_set():
            now = self._now()
            if (now >= renew_at and not self._proto.busy) or now >= renew_by:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._renew_now.wait(), RENEW_POLL_S)
        _log.info("renewing the Realtime session")
        return None

    def _drop_connection_state(self) -> None:
        """The connection is gone: waiters learn it. Tools still running go on: their outputs belong to the
        unanswered turn, which the next connection resumes."""
        self._resolve_waiters(False)

    def _dispatch(self, event: out.Output) -> RealtimeError | None:
        match event:
            case out.SessionReady():
                self._ready.set()
                event = out.SessionReady(reconnected=self.reconnects > 0)
            case out.AssistantAudio(item_id=item_id, pcm16=pcm16):
                if self._sink is not None:
                    self._sink.feed(item_id, pcm16)
            case out.UserSpeechStarted():
                if self._sink is not None and self._sink.is_playing:
                    self._proto.interrupt(self._sink.clear())
            case out.ToolCallRequested():
                task = asyncio.get_running_loop().create_task(self._run_tool(event, self._proto))
                self._tool_tasks.add(task)
                task.add_done_callback(self._tool_done)
            case out.ErrorReported(fatal=True, code=code, message=message):
                return RejectedError(f"the Realtime server refused the session: {message}", code=code)
            case out.SettingsRejected(initial=True, code=code, message=message):
                return RejectedError(f"the Realtime server rejected the session settings: {message}", code=code)
            case out.SettingsRejected(code=code, message=message):
                _log.warning("the Realtime server rejected new settings (%s): %s", code, message)
        self._events.put_nowait(event)
        return None

    def _tool_done(self, task: asyncio.Task[None]) -> None:
        self._tool_tasks.discard(task)
        if self._is_idle():
            self._resolve_waiters(True)

    async def _run_tool(self, call: out.ToolCallRequested, proto: RealtimeProtocol) -> None:
        if self._tools is None:
            output, ok = json.dumps({"error": f"no tools are available (asked for {call.name[:64]!r})"}), False
        else:
            result = await asyncio.to_thread(self._tools.execute, call.name, call.arguments)
            output, ok = result.output, result.ok
        if self._closed or not self._proto.tool_output(call.call_id, output):
            _log.info("tool %s finished after its turn was given up; output dropped", call.name[:64])
            return
        if self._proto is not proto:
            _log.info("tool %s finished after a reconnect; its output goes to the resumed turn", call.name[:64])
        self._wake.set()
        self._events.put_nowait(out.ToolCallFinished(call.call_id, call.name, call.arguments, output, ok))


def _body_code(body: bytes | bytearray | None) -> str | None:
    """The ``error.code`` of a JSON error body refusing the handshake, if any."""
    if not body:
        return None
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None
