"""The one room clock on the event loop: every active room ticked by one task, each until it goes idle."""

from __future__ import annotations

import asyncio

import pytest

from bot.voice.room_clock import RoomClock, next_tick, shared_room_clock


class Room:
    def __init__(self, ticks: int, *, fail_at: int | None = None) -> None:
        self.left = ticks
        self.ticked = 0
        self.fail_at = fail_at
        self.tasks: set[asyncio.Task[object] | None] = set()

    def tick(self) -> bool:
        self.tasks.add(asyncio.current_task())
        self.ticked += 1
        if self.fail_at is not None and self.ticked == self.fail_at:
            raise RuntimeError("mixer bug")
        self.left -= 1
        return self.left > 0


async def test_every_room_is_ticked_by_one_task_until_it_goes_idle() -> None:
    loop = asyncio.get_running_loop()
    clock = RoomClock(loop, lambda: 0.002)
    short, long = Room(3), Room(8)
    clock.wake("a", short.tick)
    clock.wake("b", long.tick)
    clock.wake("a", short.tick)  # already ticking: not added twice
    assert clock.rooms == 2
    for _ in range(200):
        await asyncio.sleep(0.002)
        if clock.rooms == 0:
            break
    assert (short.ticked, long.ticked) == (3, 8)
    assert len(short.tasks | long.tasks) == 1  # one task ticked both rooms
    assert clock.rooms == 0

    again = Room(2)  # the clock starts again for the next active room
    clock.wake("a", again.tick)
    for _ in range(200):
        await asyncio.sleep(0.002)
        if clock.rooms == 0:
            break
    assert again.ticked == 2 and again.tasks.isdisjoint(short.tasks)


async def test_a_failing_room_is_dropped_and_the_others_go_on(caplog: pytest.LogCaptureFixture) -> None:
    clock = RoomClock(asyncio.get_running_loop(), lambda: 0.002)
    broken, fine = Room(10, fail_at=2), Room(5)
    clock.wake("broken", broken.tick)
    clock.wake("fine", fine.tick)
    clock.stop("nobody")  # stopping an unknown room is harmless
    for _ in range(200):
        await asyncio.sleep(0.002)
        if clock.rooms == 0:
            break
    assert broken.ticked == 2 and fine.ticked == 5
    assert "a room's tick failed" in caplog.text


async def test_a_stopped_room_is_not_ticked_again_and_the_loop_has_one_clock() -> None:
    loop = asyncio.get_running_loop()
    clock = shared_room_clock(loop, lambda: 0.002)
    assert shared_room_clock(loop, lambda: 1.0) is clock
    room = Room(1000)
    clock.wake("gone", room.tick)
    await asyncio.sleep(0.02)
    clock.stop("gone")
    ticked = room.ticked
    await asyncio.sleep(0.02)
    assert ticked > 0 and room.ticked == ticked and clock.rooms == 0


def test_the_clock_keeps_its_grid_and_skips_ticks_missed_while_the_loop_was_held_up() -> None:
    ticks, wait_s = next_tick(10.0, 0, 0.005, 10.001)
    assert ticks == 1 and wait_s == pytest.approx(0.004)  # on time: the next grid point
    assert next_tick(10.0, 3, 0.005, 10.0205) == (4, 0.0)  # a little late for tick 4: it runs at once
    # Held up for 100 ms after tick 3: one tick at once, then the grid again; not twenty in a row to catch up.
    assert next_tick(10.0, 3, 0.005, 10.1161) == (23, 0.0)
    ticks, wait_s = next_tick(10.0, 23, 0.005, 10.1162)
    assert ticks == 24 and wait_s == pytest.approx(0.0038)
