"""A cluster of bot processes on one host: ``voicebot run --processes N``.

The supervisor splits this host's shards (``SHARD_IDS`` of ``SHARD_COUNT``; with neither set, one shard per process)
into N contiguous ranges and runs one ``python -m bot run --processes 1`` per range, each with its own
``SHARD_IDS`` and, with ``METRICS_PORT`` set, its own port (``METRICS_PORT + index``). It restarts a process that
dies, after a back-off that doubles with each quick failure (and a process whose supervisor is gone stops by
itself); a process that exits with the configuration code (2)
stops the cluster, since restarting cannot fix a setting. Processes start a few seconds apart, because Discord
accepts one IDENTIFY per five seconds.

Signals: the first SIGTERM or SIGINT is passed on once to every process, which stops cleanly within its deadline;
the supervisor waits for them (a little longer than their deadline, then kills what is left) and exits 0 when all
stopped cleanly. A second signal is passed on too (each process then stops at once) and the supervisor leaves.
Each process runs in its own session, so a terminal's Ctrl-C reaches only the supervisor and is passed on once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.ops.stop import StopSignals, force_exit

_log = logging.getLogger(__name__)

EXIT_CONFIG = 2
#: Discord accepts one IDENTIFY per five seconds (per ``max_concurrency`` bucket).
DEFAULT_START_INTERVAL_S = 5.0
#: What the supervisor waits beyond each process's own shutdown deadline before killing it.
STOP_MARGIN_S = 2.0


@dataclass(frozen=True, slots=True)
class RestartBackoff:
    """Waits before restarting a process that died: ``first_s`` doubling up to ``max_s``; a process that ran for
    ``stable_s`` starts again from ``first_s``."""

    first_s: float = 1.0
    max_s: float = 60.0
    stable_s: float = 60.0

    def delay_s(self, quick_failures: int) -> float:
        """The wait after the ``quick_failures``-th failure in a row (1 for the first)."""
        return min(self.max_s, self.first_s * 2.0 ** max(0, quick_failures - 1))


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One bot process of the cluster: its name in logs, command line and environment."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]


def split_shards(shard_ids: Sequence[int], processes: int) -> list[tuple[int, ...]]:
    """``shard_ids`` in ``processes`` contiguous ranges, sizes differing by one at most (no empty range)."""
    count = max(1, min(processes, len(shard_ids)))
    size, extra = divmod(len(shard_ids), count)
    ranges, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        ranges.append(tuple(shard_ids[start:end]))
        start = end
    return ranges


def shard_text(shard_ids: Sequence[int]) -> str:
    """``0-3`` for a contiguous range, else ``0,2,5`` (what ``SHARD_IDS`` reads)."""
    ids = list(shard_ids)
    if ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 1:
        return f"{ids[0]}-{ids[-1]}"
    return ",".join(str(i) for i in ids)


def cluster_children(
    *,
    processes: int,
    shard_ids: Sequence[int] | None,
    shard_count: int | None,
    metrics_port: int | None,
    env_file: Path | None,
    environ: Mapping[str, str] | None = None,
    python: str = sys.executable,
) -> list[ChildSpec]:
    """The processes of this host's cluster (see the module docstring)."""
    count = shard_count if shard_count is not None else processes
    ids = list(shard_ids) if shard_ids is not None else list(range(count))
    base = dict(os.environ if environ is None else environ)
    pid = str(os.getpid())
    children = []
    for index, shards in enumerate(split_shards(ids, processes)):
        env = {**base, "SHARD_ID": "", "SHARD_IDS": shard_text(shards), "SHARD_COUNT": str(count)}
        if metrics_port is not None:
            env["METRICS_PORT"] = str(metrics_port + index)
        settings = ("--env-file", str(env_file)) if env_file is not None else ()  # none given: .env if present
        argv = (python, "-m", "bot", *settings, "run", "--processes", "1", "--supervisor-pid", pid)
        children.append(ChildSpec(f"shards {shard_text(shards)}", argv, env))
    return children


class Supervisor:
    """Runs, restarts and stops the cluster's processes; :meth:`run` returns the supervisor's exit code."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        child_deadline_s: float,
        backoff: RestartBackoff | None = None,
        start_interval_s: float = DEFAULT_START_INTERVAL_S,
        signals: StopSignals | None = None,
    ) -> None:
        self._children = list(children)
        self._child_deadline_s = child_deadline_s
        self._backoff = backoff if backoff is not None else RestartBackoff()
        self._start_interval_s = start_interval_s
        self._signals = signals if signals is not None else StopSignals(on_second=self._force)
        self._running: dict[str, asyncio.subprocess.Process] = {}
        self._config_failure = False
        self._spawn_failure = False

    async def run(self) -> int:
        self._signals.install()
        stop = self._signals.requested
        keepers = [
            asyncio.create_task(self._keep(child, index * self._start_interval_s), name=f"keep {child.name}")
            for index, child in enumerate(self._children)
        ]
        try:
            await stop.wait()
            return await self._stop_all()
        finally:
            for keeper in keepers:
                keeper.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            self._signals.uninstall()

    async def _keep(self, child: ChildSpec, start_delay_s: float) -> None:
        stop = self._signals.requested
        if await self._stopped_within(start_delay_s):
            return
        quick_failures = 0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            try:
                process = await asyncio.create_subprocess_exec(*child.argv, env=dict(child.env), start_new_session=True)
            except OSError as error:
                _log.error("%s: cannot be started (%s); stopping the cluster", child.name, error)
                self._spawn_failure = True
                stop.set()
                return
            self._running[child.name] = process
            _log.info("%s: started (pid %d)", child.name, process.pid)
            code = await process.wait()
            del self._running[child.name]
            if stop.is_set():
                return
            if code == EXIT_CONFIG:
                _log.error("%s: exited with the configuration code; stopping the cluster", child.name)
                self._config_failure = True
                stop.set()
                return
            ran_s = loop.time() - started
            quick_failures = 1 if ran_s >= self._backoff.stable_s else quick_failures + 1
            delay_s = self._backoff.delay_s(quick_failures)
            _log.warning("%s: exited with %s after %.1f s; restarting in %.1f s", child.name, code, ran_s, delay_s)
            if await self._stopped_within(delay_s):
                return

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._signals.requested.wait(), seconds)
        return self._signals.requested.is_set()

    async def _stop_all(self) -> int:
        processes = dict(self._running)
        _log.info("stopping %d bot processes", len(processes))
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        waits = {name: asyncio.create_task(process.wait()) for name, process in processes.items()}
        if waits:
            await asyncio.wait(waits.values(), timeout=self._child_deadline_s + STOP_MARGIN_S)
        clean = True
        for name, wait in waits.items():
            if not wait.done():
                _log.error("%s: did not stop within its deadline; killing it", name)
                with contextlib.suppress(ProcessLookupError):
                    processes[name].kill()
                await wait
                clean = False
            elif wait.result() != 0:
                _log.warning("%s: stopped with exit code %s", name, wait.result())
                clean = False
        if self._config_failure:
            return EXIT_CONFIG
        return 0 if clean and not self._spawn_failure else 1

    def _force(self, signum: int) -> None:
        for process in list(self._running.values()):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)
        force_exit(signum)
