"""Serve a script per Realtime connection: ``async with RealtimeServer(script) as server: server.url``.

The server checks the API key of each handshake (when it has one), sends ``session.created``, runs the peer's reader
and ``script(peer)`` side by side, and ends the script when the client goes away. Subclasses (the tests' server)
hook every client event (:meth:`RealtimeServer.on_client_event`) and may refuse handshakes
(:meth:`RealtimeServer.refuse_handshake`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from bot.fakeserver.peer import Peer

_log = logging.getLogger(__name__)

Script = Callable[[Peer], Awaitable[None]]
Dialect = str
#: Default bound of a peer's waits (``expect``, ``wait_audio_ms``; six of them for a user turn).
WAIT_S = 5.0
#: How long closing waits for connections to end.
CLOSE_WAIT_S = 5.0
#: The largest client message accepted (the Realtime API takes up to 15 MiB of audio per append, base64 encoded).
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


class RealtimeServer:
    """Serve ``script`` (one per connection; the last one repeats) on ``host:port`` (0 = any free port).

    Args:
        api_key: the key clients must send (``Authorization: Bearer`` or ``api-key``); None accepts any client.
        dialect: ``"ga"`` or ``"beta"`` (server events renamed on the way out).
        wait_s: the default bound of a peer's waits.
    """

    peer_class: ClassVar[type[Peer]] = Peer

    def __init__(
        self,
        script: Script | Sequence[Script],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        dialect: Dialect = "ga",
        api_key: str | None = None,
        wait_s: float = WAIT_S,
    ) -> None:
        self._scripts: list[Script] = [script] if callable(script) else list(script)
        self.host = host
        self.port = port
        self.dialect = dialect
        self.api_key = api_key
        self.wait_s = wait_s
        self.peers: list[Peer] = []
        #: Pass ``session.update`` to the script instead of confirming it (a server that never confirms).
        self.hold_updates = False
        self.script_errors: list[BaseException] = []
        self.script_done = asyncio.Event()
        self.rejected = 0
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"ws://{host}:{port}/v1/realtime"

    async def __aenter__(self) -> RealtimeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen. Raises OSError when the port cannot be bound."""
        self._server = await serve(
            self._handle, self.host, self.port, process_request=self._check_request, max_size=MAX_MESSAGE_BYTES
        )

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), CLOSE_WAIT_S)

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    # -- hooks ---------------------------------------------------------------------------------------------------

    def on_client_event(self, event: dict[str, Any]) -> None:
        """Called with every client event as soon as it is parsed (the tests check it against the schema)."""

    def on_invalid_message(self, reason: str) -> None:
        """Called when a client message is not a valid event (it is answered with an ``error`` event)."""
        _log.warning("client sent an invalid message: %s", reason)

    def refuse_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """A response that refuses this handshake, or None to go on (to the key check)."""
        return None

    def refuse_session_update(self, event: dict[str, Any], number: int) -> tuple[str, str] | None:
        """``(code, message)`` to refuse a connection's ``number``-th ``session.update`` with, or None to confirm it."""
        return None

    # -- internals -----------------------------------------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        refusal = self.refuse_handshake(connection, request)
        if refusal is not None:
            self.rejected += 1
            return refusal
        if self.api_key is not None:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ") or request.headers.get("api-key")
            if given != self.api_key:
                self.rejected += 1
                body = {"error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "bad key"}}
                return connection.respond(HTTPStatus.UNAUTHORIZED, json.dumps(body))
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        peer = self.peer_class(connection, self)
        index = len(self.peers)
        self.peers.append(peer)
        script = self._scripts[min(index, len(self._scripts) - 1)]
        _log.info("connection %d opened (%s)", index + 1, peer.path.partition("?")[0])
        await peer.send({"type": "session.created", "event_id": peer.new_id("ev"), "session": {"id": "sess_1"}})
        reader = asyncio.ensure_future(peer.read())
        scripted = asyncio.ensure_future(script(peer))
        await asyncio.wait({reader, scripted}, return_when=asyncio.FIRST_COMPLETED)
        if not scripted.done():  # the client went away: the script has nobody to talk to
            scripted.cancel()
        await asyncio.wait({scripted})
        exc = scripted.exception() if not scripted.cancelled() else None
        if exc is not None and not isinstance(exc, ConnectionClosed):
            _log.error("the script of connection %d failed: %r", index + 1, exc)
            self.script_errors.append(exc)
        self.script_done.set()
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            await reader
        _log.info("connection %d closed", index + 1)


async def idle(peer: Peer) -> None:
    """A script that only keeps the connection open."""
    await asyncio.Event().wait()
