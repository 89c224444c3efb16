"""A local stand-in for Discord's REST API and gateway, for running the real ``python -m bot`` on loopback.

It answers what discord.py asks at start-up -- ``GET /users/@me`` (login), ``GET /oauth2/applications/@me``,
``GET /gateway/bot``, the ``PUT`` of application commands -- and speaks the gateway's opening over a real
WebSocket: HELLO, IDENTIFY (recorded, with its shard), READY, heartbeats acknowledged. Each gateway connection
gets READY for the shard it identified as, with no guilds. Point the bot at it with ``DISCORD_API_URL`` and
``DISCORD_GATEWAY_URL`` (:meth:`FakeDiscordAPI.env`). Nothing else of Discord is imitated.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

APPLICATION_ID = 99
BOT_USER = {
    "id": str(APPLICATION_ID),
    "username": "voicebot",
    "global_name": None,
    "discriminator": "0",
    "avatar": None,
    "bot": True,
    "verified": True,
    "mfa_enabled": False,
    "flags": 0,
}


@dataclass
class Identify:
    shard: tuple[int, int] | None
    intents: int
    token: str


@dataclass
class FakeDiscordAPI:
    """The stand-in; ``async with FakeDiscordAPI() as discord:`` serves it on a free loopback port."""

    #: How long ``GET /users/@me`` takes to answer (to stop the bot while it is logging in).
    login_delay_s: float = 0.0
    #: The token that logs in; any other gets Discord's 401.
    token: str = "discord-token-abcdef"
    identifies: list[Identify] = field(default_factory=list)
    #: ``(method, path)`` of every REST request, in order.
    requests: list[tuple[str, str]] = field(default_factory=list)
    command_syncs: list[str] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _sessions: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _sockets: set[web.WebSocketResponse] = field(default_factory=set)
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def env(self) -> dict[str, str]:
        return {"DISCORD_API_URL": self.api_url, "DISCORD_GATEWAY_URL": self.gateway_url}

    async def __aenter__(self) -> FakeDiscordAPI:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._closing.set()  # a delayed login answers now, so the server can stop
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- REST ----------------------------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        self.requests.append((request.method, path))
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        if request.method == "GET" and path == "/users/@me":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.login_delay_s)
            return _json(BOT_USER)
        if request.method == "GET" and path == "/oauth2/applications/@me":
            return _json(_application())
        if request.method == "GET" and path == "/gateway/bot":
            limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
            return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})
        commands = path.startswith(f"/applications/{APPLICATION_ID}/") and path.endswith("/commands")
        if request.method == "PUT" and commands:
            self.command_syncs.append(path)
            return _json([])
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    # -- gateway -------------------------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.add(socket)
        sequence = itertools.count(1)
        try:
            await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(message.data)
                if payload["op"] == 1:
                    await socket.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
                elif payload["op"] == 2:
                    data = payload["d"]
                    shard = (int(data["shard"][0]), int(data["shard"][1])) if "shard" in data else None
                    self.identifies.append(Identify(shard, data.get("intents", 0), data["token"]))
                    ready = {
                        "v": 10,
                        "user": BOT_USER,
                        "guilds": [],
                        "session_id": f"session-{next(self._sessions)}",
                        "resume_gateway_url": self.gateway_url,
                        "shard": list(shard) if shard else [0, 1],
                        "application": {"id": str(APPLICATION_ID), "flags": 0},
                    }
                    await socket.send_str(json.dumps({"op": 0, "t": "READY", "s": next(sequence), "d": ready}))
        finally:
            self._sockets.discard(socket)
        return socket


def _json(data: Any, status: int = 200) -> web.Response:
    """JSON as Discord sends it: discord.py parses a body only when the content type is exactly
    ``application/json`` (no charset)."""
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _application() -> dict[str, Any]:
    owner = {**BOT_USER, "id": "1", "username": "owner", "bot": False}
    return {
        "id": str(APPLICATION_ID),
        "name": "voicebot",
        "description": "",
        "icon": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": owner,
        "verify_key": "0" * 64,
        "flags": 0,
    }
