"""The one room clock on the event loop: each room's check runs at that room's deadline, and only then."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.voice.room_clock import RoomClock, shared_room_clock


class Room:
    """A room due every ``period_s`` for ``checks`` checks, then idle; records when each check ran."""

    def __init__(self, checks: int, period_s: float = 0.002, *, fail_at: int | None = None) -> None:
        self.left = checks
        self.period_s = period_s
        self.fail_at = fail_at
        self.checked_at: list[float] = []
        self.due_s = time.monotonic()

    def check(self) -> float | None:
        now_s = time.monotonic()
        self.checked_at.append(now_s)
        if self.fail_at is not None and len(self.checked_at) == self.fail_at:
            raise RuntimeError("mixer bug")
        self.left -= 1
        if self.left <= 0:
            return None
        self.due_s += self.period_s
        return self.due_s


async def until_idle(clock: RoomClock) -> None:
    for _ in range(500):
        if clock.rooms == 0:
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the rooms never went idle")


async def test_each_room_is_checked_at_its_deadlines_until_it_goes_idle() -> None:
    clock = RoomClock(asyncio.get_running_loop())
    short, long = Room(3), Room(8)
    clock.schedule("a", short.check, short.due_s)
    clock.schedule("b", long.check, long.due_s)
    assert clock.rooms == 2
    await until_idle(clock)
    assert (len(short.checked_at), len(long.checked_at)) == (3, 8)
    # never before a deadline: each check ran at or after the deadline it was given
    assert all(at >= long.due_s - (7 - n) * long.period_s - 1e-6 for n, at in enumerate(long.checked_at))

    again = Room(2)  # a room that went idle gets a deadline again when it has something to do
    clock.schedule("a", again.check, again.due_s)
    await until_idle(clock)
    assert len(again.checked_at) == 2


async def test_a_deadline_moved_before_it_passes_wakes_nothing() -> None:
    """While a steady speaker's frames keep pushing the room's deadline on, the check never runs."""
    clock = RoomClock(asyncio.get_running_loop())
    room = Room(1)
    for _ in range(20):
        clock.schedule("steady", room.check, time.monotonic() + 1.0)  # every frame moves it a second ahead
        await asyncio.sleep(0.005)
    assert room.checked_at == [] and clock.rooms == 1
    clock.schedule("steady", room.check, time.monotonic())  # the speaker stopped: the deadline is due
    await until_idle(clock)
    assert len(room.checked_at) == 1


async def test_a_failing_room_is_dropped_and_the_others_go_on(caplog: pytest.LogCaptureFixture) -> None:
    clock = RoomClock(asyncio.get_running_loop())
    broken, fine = Room(10, fail_at=2), Room(5)
    clock.schedule("broken", broken.check, broken.due_s)
    clock.schedule("fine", fine.check, fine.due_s)
    clock.stop("nobody")  # stopping an unknown room is harmless
    await until_idle(clock)
    assert len(broken.checked_at) == 2 and len(fine.checked_at) == 5
    assert "a room's deadline check failed" in caplog.text


async def test_a_stopped_room_is_not_checked_again_and_the_loop_has_one_clock() -> None:
    loop = asyncio.get_running_loop()
    clock = shared_room_clock(loop)
    assert shared_room_clock(loop) is clock
    room = Room(1000)
    clock.schedule("gone", room.check, room.due_s)
    await asyncio.sleep(0.02)
    clock.stop("gone")
    checked = len(room.checked_at)
    await asyncio.sleep(0.02)
    assert checked > 0 and len(room.checked_at) == checked and clock.rooms == 0


async def test_no_deadline_means_idle() -> None:
    clock = RoomClock(asyncio.get_running_loop())
    room = Room(3)
    clock.schedule("quiet", room.check, room.due_s + 10.0)
    clock.schedule("quiet", room.check, None)  # the room went idle before its deadline
    await asyncio.sleep(0.01)
    assert clock.rooms == 0 and room.checked_at == []
