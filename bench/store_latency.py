"""Store latency: how long the bot's store calls take on each backend under the load benchmark's levels, and that
the event loop keeps its pace meanwhile.

Each level runs ``N`` conversations' worth of the bot's own store traffic in one event loop, against a fresh store
(a SQLite file in a temporary directory; a database on a real PostgreSQL server started for the run, as the tests
do). Per conversation, as :class:`~bot.session.record.SessionRecord` does it: an answer's token usage every
``TURN_PERIOD_S`` (the load benchmark's turn period), and every ``LIMIT_CHECK_INTERVAL_S`` one usage step (session
seconds, and the speaker's talk time). Beside them, a command stream reads and writes as ``/voice status``,
``/voice usage``, ``/voice settings`` and ``/voice privacy`` do, one command every ``COMMAND_PERIOD_S``. Every call's
time from the ``await`` to its result is recorded per operation; a 10 ms ticker records how late the event loop
ran it (the store works off the loop, so this stays near zero however slow a call is).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from bench import load
from bench.timing import Options, percentile
from bot.session.lifetime import LIMIT_CHECK_INTERVAL_S
from bot.store import SettingsStore
from bot.store.postgres import PostgresStore
from bot.store.sqlite import DB_FILENAME, SqliteStore
from tests.store.pg_server import PostgresServer, PostgresUnavailable

SECONDS_PER_LEVEL = 12.0
COMMAND_PERIOD_S = 0.5
TICK_S = 0.010
BACKENDS = ("sqlite", "postgres")
DAY = "2026-11-30"


class Timings:
    """Milliseconds per operation, and the ticker's lateness."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.late_ms: list[float] = []
        self.errors: list[str] = []

    async def time(self, name: str, call: Awaitable[object]) -> None:
        started = time.perf_counter()
        try:
            await call
        except Exception as error:  # a failure is a result here: counted, and the run goes on
            self.errors.append(f"{name}: {error}")
            return
        self.calls[name].append((time.perf_counter() - started) * 1000)


async def _conversation(
    store: SettingsStore, guild_id: int, timings: Timings, stop_at: float, rng: random.Random
) -> None:
    loop = asyncio.get_running_loop()
    next_turn = loop.time() + rng.uniform(0, load.TURN_PERIOD_S)
    next_step = loop.time() + rng.uniform(0, LIMIT_CHECK_INTERVAL_S)
    while True:
        wake = min(next_turn, next_step)
        if wake >= stop_at:
            return
        await asyncio.sleep(max(0.0, wake - loop.time()))
        if wake == next_turn:
            next_turn += load.TURN_PERIOD_S
            await timings.time(
                "add_usage (an answer's tokens)",
                store.add_usage(guild_id, DAY, input_tokens=900, output_tokens=300, cost_usd=0.02),
            )
        else:
            next_step += LIMIT_CHECK_INTERVAL_S
            await timings.time("add_usage (session step)", store.add_usage(guild_id, DAY, seconds=5.0))
            await timings.time("add_user_usage", store.add_user_usage(guild_id, DAY, guild_id * 10, 2.5))


def _commands(store: SettingsStore, guild_id: int) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    return [
        ("get", lambda: store.get(guild_id)),
        ("usage", lambda: store.usage(guild_id, DAY)),
        ("top_talkers", lambda: store.top_talkers(guild_id, "2026-11-01", 5)),
        ("update", lambda: store.update(guild_id, {"silence_ms": 600})),
        ("set_privacy", lambda: store.set_privacy(guild_id, 7, no_transcript=True)),
        ("opted_out", lambda: store.opted_out(guild_id)),
    ]


async def _command_stream(store: SettingsStore, guilds: int, timings: Timings, stop_at: float) -> None:
    loop = asyncio.get_running_loop()
    number = 0
    while loop.time() < stop_at:
        guild_id = 1 + number % guilds
        name, call = _commands(store, guild_id)[number % 6]
        await timings.time(name, call())
        number += 1
        await asyncio.sleep(COMMAND_PERIOD_S)


async def _ticker(timings: Timings, stop_at: float) -> None:
    loop = asyncio.get_running_loop()
    expected = loop.time() + TICK_S
    while expected < stop_at:
        await asyncio.sleep(max(0.0, expected - loop.time()))
        timings.late_ms.append(max(0.0, (loop.time() - expected) * 1000))
        expected += TICK_S


async def _run_level(store: SettingsStore, conversations: int, seconds: float) -> Timings:
    timings = Timings()
    rng = random.Random(conversations)
    stop_at = asyncio.get_running_loop().time() + seconds
    await asyncio.gather(
        _ticker(timings, stop_at),
        _command_stream(store, conversations, timings, stop_at),
        *(_conversation(store, 1 + n, timings, stop_at, rng) for n in range(conversations)),
    )
    return timings


def _row(backend: str, conversations: int, seconds: float, timings: Timings) -> dict[str, Any]:
    ops = []
    for name, values in sorted(timings.calls.items()):
        ops.append(
            {
                "op": name,
                "calls": len(values),
                "p50_ms": round(percentile(values, 0.50), 2),
                "p95_ms": round(percentile(values, 0.95), 2),
                "p99_ms": round(percentile(values, 0.99), 2),
                "max_ms": round(max(values), 2),
            }
        )
    calls = sum(len(v) for v in timings.calls.values())
    return {
        "backend": backend,
        "conversations": conversations,
        "seconds": seconds,
        "calls_per_s": round(calls / seconds, 1),
        "ops": ops,
        "loop_late_p99_ms": round(percentile(timings.late_ms, 0.99), 2),
        "loop_late_max_ms": round(max(timings.late_ms, default=0.0), 2),
        "errors": sorted(set(timings.errors))[:10],
    }


async def _run_backend(
    backend: str, levels: tuple[int, ...], seconds: float, server: PostgresServer | None
) -> list[dict[str, Any]]:
    rows = []
    for count in levels:
        with tempfile.TemporaryDirectory(prefix="voicebot-store-bench-") as directory:
            store: SettingsStore
            if backend == "sqlite":
                store = await SqliteStore.open(Path(directory) / DB_FILENAME)
            else:
                assert server is not None
                store = await PostgresStore.connect(await server.create_database("bench"))
            try:
                timings = await _run_level(store, count, seconds)
            finally:
                await store.close()
        rows.append(_row(backend, count, seconds, timings))
    return rows


def run(options: Options) -> dict[str, Any]:
    """Both backends at every load level (``--load-levels``; ``--quick``: 2 conversations for 2 s)."""
    levels = options.load_levels or ((2,) if options.quick else load.LEVELS)
    seconds = 2.0 if options.quick else SECONDS_PER_LEVEL
    result: dict[str, Any] = {"seconds_per_level": seconds, "levels": [], "skipped": {}}
    result["levels"] += asyncio.run(_run_backend("sqlite", levels, seconds, None))
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as error:
        result["skipped"]["postgres"] = str(error)
        return result
    try:
        result["levels"] += asyncio.run(_run_backend("postgres", levels, seconds, server))
    finally:
        server.stop()
    return result


def iter_markdown(result: dict[str, Any]) -> Iterator[str]:
    yield "## 7. Store latency on both backends"
    yield ""
    yield (
        f"Each level runs {result['seconds_per_level']} s in one event loop: per conversation, an answer's token "
        f"usage every {load.TURN_PERIOD_S} s and a usage step (session seconds + talk time) every "
        f"{LIMIT_CHECK_INTERVAL_S} s, as a session does; beside them one command every {COMMAND_PERIOD_S} s (get, "
        "usage, top talkers, update, set privacy, opted out, in turn). SQLite: a file on the local disk, one worker "
        "thread; PostgreSQL: a real server on a unix socket on this machine, a pool of up to 4 connections. Times are "
        "from the `await` to the result, in ms. Loop late = how late a 10 ms ticker on the same event loop ran "
        "(the store works off the loop: a slow call must not make it late)."
    )
    yield ""
    yield "| backend | conversations | calls / s | operation | calls | p50 | p95 | p99 | max | loop late p99 / max |"
    yield "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for row in result["levels"]:
        for op in row["ops"]:
            yield (
                f"| {row['backend']} | {row['conversations']} | {row['calls_per_s']} | {op['op']} | {op['calls']} "
                f"| {op['p50_ms']} | {op['p95_ms']} | {op['p99_ms']} | {op['max_ms']} "
                f"| {row['loop_late_p99_ms']} / {row['loop_late_max_ms']} |"
            )
    errors = [e for row in result["levels"] for e in row["errors"]]
    yield ""
    yield f"Store errors across all levels: {len(errors)}" + (f" (first: {errors[0]})." if errors else ".")
    for backend, reason in result.get("skipped", {}).items():
        yield f"- {backend} not measured: {reason}"
