"""Event-loop lag: how late the loop wakes a timer. A busy or blocked loop delays every guild's audio and commands;
this measures it into ``voicebot_event_loop_lag_seconds``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.ops import metrics

_log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.5


class LoopLagMonitor:
    """Sleeps ``interval_s`` again and again on the running loop and records how much longer each sleep took."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start measuring (call on the loop to measure)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self._interval_s)
            metrics.event_loop_lag(loop.time() - before - self._interval_s)
