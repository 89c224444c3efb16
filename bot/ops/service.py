"""One bot process as a service: start with health, metrics and loop-lag measurement, stop cleanly on SIGTERM.

Exit codes: 0 after a clean stop (a signal, or the bot closed by itself); 1 when Discord cannot be reached at start-up
(one line on stderr, no traceback; a supervisor or systemd retries later), or when the clean stop overran its
deadline; 2 when Discord refuses the token or the intents (a setting to fix, so retrying cannot help).

A stop signal while logging in or connecting cancels that and closes (nothing to say goodbye to); once connected,
every live session reads and hears a short notice, closes with its usage written, and the bot logs out. All of it is
bounded by the shutdown deadline; a second signal forces the process out at once (:mod:`bot.ops.stop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from typing import Protocol

import aiohttp
import discord

from bot.ops.health import HealthReport, HealthServer
from bot.ops.loop_lag import LoopLagMonitor
from bot.ops.stop import StopSignals

_log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_UNAVAILABLE = 1
EXIT_CONFIG = 2
#: The share of the shutdown deadline the restart notice may take before sessions are closed anyway.
NOTICE_SHARE = 0.4
#: The longest the restart notice is waited for, however long the deadline.
MAX_NOTICE_WAIT_S = 6.0
#: How often a supervised process checks that its supervisor is still there.
PARENT_CHECK_S = 1.0


class ServedBot(Protocol):
    """What the service needs of the bot (``bot.app.VoiceBot``)."""

    async def start(self, token: str, *, reconnect: bool = True) -> None: ...
    async def close(self) -> None: ...
    async def shutdown(self, notice_wait_s: float) -> None:
        """Tell every live session's channel, close the sessions (usage written), then log out."""

    def is_ready(self) -> bool: ...
    def health(self) -> HealthReport: ...


#: What "Discord cannot be reached" looks like from discord.py and aiohttp at login.
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    aiohttp.ClientError,
    discord.GatewayNotFound,
    discord.DiscordServerError,
)


def notice_wait_s(deadline_s: float) -> float:
    """How long channels may take to hear the restart notice within a shutdown deadline of ``deadline_s``."""
    return min(MAX_NOTICE_WAIT_S, deadline_s * NOTICE_SHARE)


def start_up_failure(error: BaseException, api_url: str) -> tuple[int, str] | None:
    """The exit code and the one line for an error that ended start-up; None for an unexpected error (a bug)."""
    if isinstance(error, discord.LoginFailure):
        return EXIT_CONFIG, "Discord rejected DISCORD_TOKEN: reset the token in the Developer Portal (Bot tab)."
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return EXIT_CONFIG, "Discord refused the requested intents; the bot needs no privileged intent."
    if isinstance(error, discord.ConnectionClosed):
        return EXIT_UNAVAILABLE, f"Discord closed the gateway connection (code {error.code}: {error.reason or 'none'})."
    if isinstance(error, UNREACHABLE_ERRORS):
        reason = " ".join(str(error).split()) or type(error).__name__
        return EXIT_UNAVAILABLE, f"Discord cannot be reached at {api_url} ({reason}); check the network and try again."
    return None


async def serve(
    bot: ServedBot,
    token: str,
    *,
    shutdown_deadline_s: float,
    metrics_port: int | None = None,
    api_url: str = "https://discord.com/api",
    signals: StopSignals | None = None,
    supervisor_pid: int | None = None,
    print_line: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> int:
    """Run ``bot`` until it stops or a signal asks it to; returns the exit code (see the module docstring).

    With ``supervisor_pid``, the process also stops cleanly when its supervisor is gone (killed without passing a
    signal on), rather than live on as an orphan that a restarted cluster would duplicate.
    """
    signals = signals if signals is not None else StopSignals()
    signals.install()
    health = HealthServer(metrics_port, bot.health) if metrics_port is not None else None
    lag = LoopLagMonitor()
    orphan_watch = (
        asyncio.create_task(_stop_when_orphaned(supervisor_pid, signals)) if supervisor_pid is not None else None
    )
    try:
        if health is not None:
            try:
                await health.start()
            except OSError as error:
                print_line(f"The health and metrics port {metrics_port} cannot be opened: {error.strerror or error}.")
                return EXIT_UNAVAILABLE
        lag.start()
        runner = asyncio.create_task(bot.start(token), name="discord")
        stop = asyncio.create_task(signals.requested.wait(), name="stop-signal")
        await asyncio.wait({runner, stop}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            stop.cancel()
            return _finished(runner, api_url, print_line)
        return await _stop(bot, runner, shutdown_deadline_s, print_line)
    finally:
        if orphan_watch is not None:
            orphan_watch.cancel()
        await lag.stop()
        if health is not None:
            await health.close()
        signals.uninstall()


async def _stop_when_orphaned(supervisor_pid: int, signals: StopSignals) -> None:
    while True:
        await asyncio.sleep(PARENT_CHECK_S)
        if os.getppid() != supervisor_pid:  # re-parented: the supervisor died
            break
    _log.warning("the supervisor (pid %d) is gone: stopping", supervisor_pid)
    signals.requested.set()


def _finished(runner: asyncio.Task[None], api_url: str, print_line: Callable[[str], None]) -> int:
    error = runner.exception()
    if error is None:
        return EXIT_OK
    failure = start_up_failure(error, api_url)
    if failure is None:
        raise error
    code, line = failure
    print_line(line)
    return code


async def _stop(
    bot: ServedBot, runner: asyncio.Task[None], deadline_s: float, print_line: Callable[[str], None]
) -> int:
    _log.info("stopping: a clean shutdown within %.0f s", deadline_s)

    async def clean() -> None:
        if bot.is_ready():
            await bot.shutdown(notice_wait_s(deadline_s))
        else:
            runner.cancel()  # logging in or connecting: nothing to say goodbye to
            await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await runner

    try:
        await asyncio.wait_for(clean(), deadline_s)
    except TimeoutError:
        print_line(f"The clean shutdown took longer than {deadline_s:g} s; stopping anyway.")
        return EXIT_UNAVAILABLE
    except Exception:
        _log.exception("the shutdown failed part-way")
        return EXIT_UNAVAILABLE
    _log.info("stopped cleanly")
    return EXIT_OK
