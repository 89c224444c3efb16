"""One deadline clock on the event loop for every room in the process: a room is looked at only when it is due.

A room sends a slot as soon as it is complete, from the delivery of the frame that completes it
(:mod:`bot.voice.room`); the clock only keeps each room's deadline (a late speaker, the silence tail in real time,
the room going idle). Each room has at most one timer on the loop (``call_later``), moved whenever its deadline
moves: a steady speaker's frames each push the deadline a frame further, so while people talk in step the clock
never wakes at all; it runs a room's check only when a deadline passes (about 15 times at the end of each talk
spurt, for the tail). A cancelled timer costs the loop nothing (it drops them without waking).

It replaces, in turn, a sleep loop per voice connection (5,000 timer wake-ups and task steps a second at 100 busy
rooms: ``bench/FINDINGS.md``, section 4) and then one task ticking every active room every 10 ms (100 wake-ups a
second per process whether or not anything was due; about 20 ms of CPU a second with five rooms).

A check returns the room's next deadline, or ``None`` when the room went idle; a check that raises drops that room
(logged) without disturbing the others. Event loop only: :meth:`RoomClock.schedule` and the checks run on the loop
the clock was made for. Deadlines are on ``now``'s clock (``time.monotonic``, the mixer's).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable

_log = logging.getLogger(__name__)

#: ``check() -> next deadline or None``: a room at its deadline (seconds on the clock's ``now``; ``None``: idle).
RoomCheck = Callable[[], float | None]


class RoomClock:
    """Runs each room's check at that room's deadline, until the room goes idle."""

    def __init__(self, loop: asyncio.AbstractEventLoop, now: Callable[[], float] = time.monotonic) -> None:
        self._loop = loop
        self._now = now
        self._timers: dict[object, asyncio.TimerHandle] = {}

    @property
    def rooms(self) -> int:
        """Rooms with a deadline."""
        return len(self._timers)

    def schedule(self, key: object, check: RoomCheck, due_s: float | None) -> None:
        """Run ``check`` for room ``key`` at ``due_s`` (at once if it has passed), instead of its previous deadline;
        ``None``: the room has no deadline (idle)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if due_s is not None:
            delay_s = max(0.0, due_s - self._now())
            self._timers[key] = self._loop.call_later(delay_s, self._check, key, check)

    def stop(self, key: object) -> None:
        """Forget ``key``'s deadline (its connection closed)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _check(self, key: object, check: RoomCheck) -> None:
        del self._timers[key]
        try:
            due_s = check()
        except Exception:
            _log.exception("a room's deadline check failed; that room goes idle")
            return
        if key not in self._timers:  # the check did not set a deadline of its own meanwhile
            self.schedule(key, check, due_s)


_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RoomClock] = weakref.WeakKeyDictionary()


def shared_room_clock(loop: asyncio.AbstractEventLoop) -> RoomClock:
    """The one clock of ``loop`` (made on first use)."""
    clock = _clocks.get(loop)
    if clock is None:
        clock = _clocks[loop] = RoomClock(loop)
    return clock
