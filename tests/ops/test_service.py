"""The service's stop rules with real signals: a shutdown that hangs ends at its deadline (exit 1, one line), and a
second signal forces the process out without waiting.

A hanging shutdown cannot be provoked in the real bot from outside (``test_process.py`` stops it for real), so the
bot here is a stand-in whose shutdown never returns; the signals are real, sent to this process or to a child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from asyncio.subprocess import PIPE
from types import SimpleNamespace

import discord

from bot.ops.health import HealthReport
from bot.ops.service import notice_wait_s, serve, start_up_failure
from bot.ops.stop import StopSignals
from tests.ops.process import ROOT, finish, wait_until


class HangingBot:
    """Logged in and ready; its clean shutdown never finishes (a channel that never stops talking)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.shutdown_asked: list[float] = []

    async def start(self, token: str, *, reconnect: bool = True) -> None:
        self.started.set()
        await asyncio.Event().wait()

    async def close(self) -> None:
        raise AssertionError("a ready bot is shut down, not just closed")

    async def shutdown(self, notice_wait_s: float) -> None:
        self.shutdown_asked.append(notice_wait_s)
        await asyncio.Event().wait()

    def is_ready(self) -> bool:
        return True

    def health(self) -> HealthReport:
        return HealthReport(ready=True, shard_ids=(0,), shard_count=1)


async def test_a_hanging_shutdown_ends_at_the_deadline_with_one_line_and_exit_1() -> None:
    bot, lines = HangingBot(), list[str]()
    service = asyncio.create_task(serve(bot, "token", shutdown_deadline_s=0.5, print_line=lines.append))
    await bot.started.wait()
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(service, 10) == 1
    assert lines == ["The clean shutdown took longer than 0.5 s; stopping anyway."]
    assert bot.shutdown_asked == [notice_wait_s(0.5)]


async def test_the_second_signal_forces_without_waiting_for_the_deadline() -> None:
    bot, forced = HangingBot(), list[int]()
    signals = StopSignals(on_second=forced.append)
    service = asyncio.create_task(serve(bot, "token", shutdown_deadline_s=60, signals=signals, print_line=print))
    await bot.started.wait()
    os.kill(os.getpid(), signal.SIGINT)
    await wait_until(lambda: bool(bot.shutdown_asked))
    os.kill(os.getpid(), signal.SIGINT)
    await wait_until(lambda: bool(forced))
    assert forced == [signal.SIGINT] and not service.done()
    service.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await service


async def test_the_forced_exit_of_a_real_process_is_one_line_and_128_plus_the_signal() -> None:
    program = (
        "import asyncio\n"
        "from bot.ops.stop import StopSignals\n"
        "async def main():\n"
        "    signals = StopSignals()\n"
        "    signals.install()\n"
        "    print('waiting', flush=True)\n"
        "    await signals.requested.wait()\n"
        "    print('stopping', flush=True)\n"
        "    await asyncio.Event().wait()  # a clean stop that never ends\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", program, cwd=ROOT, stdout=PIPE, stderr=PIPE)
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 30) == b"waiting\n"
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.stdout.readline(), 30) == b"stopping\n"
    process.send_signal(signal.SIGTERM)
    code, _stdout, stderr = await finish(process)
    assert code == 128 + signal.SIGTERM
    assert stderr == "SIGTERM again: stopping now, without a clean shutdown.\n"


def test_the_notice_gets_a_share_of_the_deadline_and_never_more_than_a_few_seconds() -> None:
    assert notice_wait_s(10.0) == 4.0 and notice_wait_s(2.0) == 0.8 and notice_wait_s(60.0) == 6.0


def test_how_start_up_failures_are_told() -> None:
    closed = discord.ConnectionClosed(SimpleNamespace(close_code=4013), shard_id=0)  # type: ignore[arg-type]
    assert start_up_failure(closed, "x") == (1, "Discord closed the gateway connection (code 4013: none).")
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    assert start_up_failure(refused, "http://127.0.0.1:9/api") == (
        1, "Discord cannot be reached at http://127.0.0.1:9/api ([Errno 111] Connect call failed ('127.0.0.1', 9)); "
        "check the network and try again.",
    )  # fmt: skip
    assert start_up_failure(ValueError("a bug"), "x") is None  # a bug keeps its traceback
