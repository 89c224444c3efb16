"""One clock on the event loop for every active room in the process: the rooms' deadlines, not their pace.

A room sends a slot as soon as it is complete, from the delivery of the frame that completes it
(:mod:`bot.voice.room`); the clock only checks each room's deadline (a late speaker, the silence tail in real time,
the room going idle). It ticks more often than once a frame (the voice client: every 10 ms) so a deadline is passed
by less than a frame.

Each voice connection used to run its own ``asyncio.sleep`` loop while its room was active: at 100 busy rooms, 5,000
timer wake-ups and task steps a second on the event loop (``bench/FINDINGS.md``, section 4). A :class:`RoomClock`
is one task, against ``start + n × tick``, that ticks every room woken on it, in the order they were woken, and ends
when none is left (the next :meth:`RoomClock.wake` starts it again). Ticks missed while the loop was held up are
skipped, not caught up (each room keeps its own deadlines, so one tick does what the missed ones would have). A
room's tick returns whether it is still active; a room that raises is dropped (logged) without disturbing the others.

Event loop only: :meth:`wake` and the ticks run on the loop the clock was made for.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

from bot.audio.formats import FRAME_MS

_log = logging.getLogger(__name__)

#: ``tick() -> still active``: one check of one room.
RoomTick = Callable[[], bool]


class RoomClock:
    """Ticks every woken room every ``tick_s()`` seconds (a callable, read at each start, so a benchmark may speed
    the clock up) until each goes idle. The default is half a frame."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick_s: Callable[[], float] = lambda: FRAME_MS / 2000) -> None:
        self._loop = loop
        self._tick_s = tick_s
        self._rooms: dict[object, RoomTick] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def rooms(self) -> int:
        """Rooms being ticked."""
        return len(self._rooms)

    def wake(self, key: object, tick: RoomTick) -> None:
        """Tick ``tick`` from the next clock tick on, until it returns False (a room already ticking stays as is).
        If no room was ticking, the clock starts now, so the first tick comes at once."""
        if key in self._rooms:
            return
        self._rooms[key] = tick
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._run(), name="voice room clock")

    def stop(self, key: object) -> None:
        """Stop ticking ``key`` (its connection closed)."""
        self._rooms.pop(key, None)

    async def _run(self) -> None:
        tick_s = self._tick_s()
        start_s = self._loop.time()
        ticks = 0
        while self._rooms:
            for key, tick in list(self._rooms.items()):
                try:
                    active = tick()
                except Exception:
                    _log.exception("a room's tick failed; that room goes idle")
                    active = False
                if not active and self._rooms.get(key) is tick:
                    del self._rooms[key]
            if self._rooms:
                ticks, wait_s = next_tick(start_s, ticks, tick_s, self._loop.time())
                await asyncio.sleep(wait_s)


def next_tick(start_s: float, ticks: int, tick_s: float, now_s: float) -> tuple[int, float]:
    """After tick number ``ticks`` (counted from 0 at ``start_s``): the number of the next tick and the wait until it,
    on the grid ``start_s + n × tick_s``. When the loop was held up past it, one tick runs at once (the latest
    grid point passed) and the others missed are skipped, not caught up."""
    following = max(ticks + 1, int((now_s - start_s) / tick_s))
    return following, max(0.0, start_s + following * tick_s - now_s)


_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RoomClock] = weakref.WeakKeyDictionary()


def shared_room_clock(loop: asyncio.AbstractEventLoop, tick_s: Callable[[], float]) -> RoomClock:
    """The one clock of ``loop`` (made on first use with ``tick_s``)."""
    clock = _clocks.get(loop)
    if clock is None:
        clock = _clocks[loop] = RoomClock(loop, tick_s)
    return clock
