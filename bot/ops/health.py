"""The HTTP side of a bot process: ``/healthz`` for orchestrators and load balancers, ``/metrics`` for Prometheus.

``/healthz`` is 200 when the process is logged in and its shards are ready, 503 otherwise; either way its JSON says
why (shard ids, gateway latency, live sessions, the process id). It binds to every interface, like any exporter:
keep the port behind the host's firewall.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from bot.ops import metrics

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HealthReport:
    """What ``/healthz`` tells: whether the process serves, and the figures behind it."""

    ready: bool
    shard_ids: tuple[int, ...]
    shard_count: int | None
    #: Each connected shard's gateway heartbeat latency (None before its first heartbeat).
    latency_s: dict[int, float | None] = field(default_factory=dict)
    sessions: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ok" if self.ready else "unavailable",
            "ready": self.ready,
            "shard_ids": list(self.shard_ids),
            "shard_count": self.shard_count,
            "latency_s": {str(shard): latency for shard, latency in sorted(self.latency_s.items())},
            "sessions": self.sessions,
            "pid": os.getpid(),
        }


def finite_or_none(value: float) -> float | None:
    """discord.py reports an unknown latency as ``nan`` or ``inf``; JSON holds neither."""
    return value if math.isfinite(value) else None


class HealthServer:
    """Serves ``/healthz`` (from ``report``) and ``/metrics`` on ``port``; :meth:`start`, then :meth:`close`."""

    def __init__(self, port: int, report: Callable[[], HealthReport], *, host: str = "0.0.0.0") -> None:
        self.port = port
        self._host = host
        self._report = report
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        """Listen. Raises ``OSError`` when the port cannot be bound (in use, or not allowed)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        _log.info("health and metrics on http://%s:%d/healthz and /metrics", self._host, self.port)

    async def close(self) -> None:
        await self._runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        try:
            report = self._report()
        except Exception:
            _log.exception("the health report failed")
            return web.json_response({"status": "error", "ready": False}, status=503)
        return web.json_response(report.as_json(), status=200 if report.ready else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        response.content_type = metrics.CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response
