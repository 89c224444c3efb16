"""The local Realtime server for tests: the shipped one (:mod:`bot.fakeserver`), checked and scriptable per test.

:class:`RealtimeTestServer` is :class:`bot.fakeserver.server.RealtimeServer` with a test's *script* (a coroutine
``script(peer)`` run once per connection), the key ``test-key``, waits scaled from :data:`UNIT_S`, and two checks
of its own: every client event is validated against the official ``openai`` typed models of the server's dialect
(problems collect in :attr:`RealtimeTestServer.schema_problems`), and handshakes can be refused with chosen HTTP
statuses. Scripts are built from the :class:`~bot.fakeserver.peer.Peer` methods: ``expect``, ``answer_with_audio``,
``call_tools``, ``wait_for_user_turn`` (a tiny energy VAD over the appended audio), ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from bot.fakeserver import peer as shipped_peer
from bot.fakeserver.peer import BYTES_PER_MS, SAMPLE_RATE, USAGE, tone_pcm16
from bot.fakeserver.server import RealtimeServer, idle
from tests.realtime.schema import schema_problems

__all__ = [
    "BYTES_PER_MS",
    "SAMPLE_RATE",
    "UNIT_S",
    "USAGE",
    "Peer",
    "RealtimeTestServer",
    "Script",
    "idle",
    "tone_pcm16",
]

#: Every test timeout scales from this unit.
UNIT_S = 5.0

Script = Callable[["Peer"], Awaitable[None]]


@dataclass
class Peer(shipped_peer.Peer):
    """The server side of one test connection (its ``server`` is the test server)."""

    server: RealtimeTestServer

    async def close(self, code: int, reason: str = "") -> None:
        """Close the WebSocket with ``code`` and ``reason`` (4001 for a bad key, 1008 for a policy, 1011...)."""
        await self.connection.close(code, reason)


class RealtimeTestServer(RealtimeServer):
    """Serve ``script`` on 127.0.0.1. Use as ``async with RealtimeTestServer(script) as server: server.url``."""

    peer_class: ClassVar[type[shipped_peer.Peer]] = Peer

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
        # the scripts take this module's Peer, which is what peer_class makes for them
        super().__init__(script, dialect=dialect, api_key=api_key, wait_s=UNIT_S)  # type: ignore[arg-type]
        self.handshake_status = handshake_status
        self.handshake_body = handshake_body
        #: ``refuse_update(event, n)`` -> ``(code, message)`` refuses the connection's n-th session.update.
        self.refuse_update = refuse_update
        self.hold_updates = hold_updates
        self.schema_problems: list[str] = []
        #: Statuses to refuse the next handshakes with, in order (set by a script before it drops a connection).
        self.upcoming_statuses: list[int] = []

    async def __aenter__(self) -> RealtimeTestServer:
        await self.start()
        return self

    def on_client_event(self, event: dict[str, Any]) -> None:
        # looked up in this module at each call, so a benchmark may replace ``schema_problems``
        self.schema_problems += schema_problems(event, self.dialect)

    def on_invalid_message(self, reason: str) -> None:
        self.schema_problems.append(reason)

    def refuse_session_update(self, event: dict[str, Any], number: int) -> tuple[str, str] | None:
        return self.refuse_update(event, number) if self.refuse_update is not None else None

    def refuse_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        status = self.upcoming_statuses.pop(0) if self.upcoming_statuses else self.handshake_status
        if status is None:
            return None
        return connection.respond(HTTPStatus(status), self.handshake_body)
