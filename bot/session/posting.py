"""Posting a session's lines (transcripts, notices) to a text channel, in order, without blocking the caller.

A :class:`TextPoster` takes lines from synchronous code on the event loop (the guild session's callbacks) and sends
them one at a time from its own task, so the order of a conversation survives and a slow or failing send never
holds up audio. The destination is looked up at each send, so changing the transcript channel takes effect at once.
When the channel cannot keep up, the oldest waiting lines are dropped (and counted), never the process's memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

_log = logging.getLogger(__name__)

#: Discord's limit on a message's content.
MAX_MESSAGE_CHARS = 2000
DEFAULT_MAX_WAITING = 50

Send = Callable[[str], Awaitable[object]]


def fit_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TextPoster:
    """An ordered, bounded outbox. Call :meth:`post` from the event loop; :meth:`close` when the session ends."""

    def __init__(self, resolve: Callable[[], Send | None], *, max_waiting: int = DEFAULT_MAX_WAITING) -> None:
        if max_waiting < 1:
            raise ValueError(f"max_waiting must be >= 1, got {max_waiting}")
        self._resolve = resolve
        self._waiting: deque[str] = deque(maxlen=max_waiting)
        self._wake = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.failed = 0
        self.sent = 0

    def post(self, text: str) -> None:
        """Queue ``text`` for sending (dropped when closed; the oldest line goes when the outbox is full)."""
        if self._closed or not text.strip():
            return
        if len(self._waiting) == self._waiting.maxlen:
            self.dropped += 1
        self._waiting.append(fit_message(text))
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="text-poster")

    async def _run(self) -> None:
        while True:
            while self._waiting:
                line = self._waiting.popleft()
                send = self._resolve()
                if send is None:
                    self.dropped += 1
                    continue
                try:
                    await send(line)
                    self.sent += 1
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    self.failed += 1
                    _log.warning("posting to the text channel failed: %s", type(error).__name__)
            if self._closed:
                return
            self._wake.clear()
            await self._wake.wait()

    async def close(self, flush_timeout_s: float = 5.0) -> None:
        """Send what is waiting (for at most ``flush_timeout_s``), then stop. Idempotent."""
        self._closed = True
        self._wake.set()
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), flush_timeout_s)
        except TimeoutError:
            task.cancel()
            _log.warning("gave up posting %d lines when the session ended", len(self._waiting))
