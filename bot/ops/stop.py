"""Stopping on a signal: the first SIGTERM or SIGINT asks for a clean stop, a second one forces the process out.

The forced exit writes one line to stderr and leaves with ``128 + signal`` (130 for Ctrl-C, 143 for SIGTERM), as a
shell reports a process killed by that signal, without waiting for anything that may be stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_before_start() -> None:
    """Until the event loop takes over, a stop signal is a quiet exit 0 (Python's default would print a
    ``KeyboardInterrupt`` traceback for Ctrl-C, and die by SIGTERM without running ``finally`` blocks)."""

    def leave(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    for signum in STOP_SIGNALS:
        signal.signal(signum, leave)


def force_exit(signum: int) -> None:
    """Leave at once: a line on stderr (written directly, no buffer to flush) and ``os._exit``."""
    name = signal.Signals(signum).name
    with contextlib.suppress(OSError):
        os.write(sys.stderr.fileno(), f"{name} again: stopping now, without a clean shutdown.\n".encode())
    os._exit(128 + signum)


class StopSignals:
    """Installs the stop signal handlers on the running loop; :attr:`requested` is set by the first signal."""

    def __init__(self, *, on_second: Callable[[int], None] = force_exit) -> None:
        self.requested = asyncio.Event()
        self.signum: int | None = None
        self._on_second = on_second

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError):  # not on Windows
                loop.add_signal_handler(signum, self._received, signum)

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signum)

    def _received(self, signum: int) -> None:
        if self.requested.is_set():
            self._on_second(signum)
            return
        self.signum = signum
        self.requested.set()
