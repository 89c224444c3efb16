"""What only the SQLite backend has: migrating files older bots left, the file's column types, and the worker
thread that keeps a locked or slow file off the event loop (a real file, locked by a real second process)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import (
    SCHEMA_VERSION,
    GuildSettings,
    Privacy,
    StoreError,
    StoreOutcomeUnknown,
    StoreUnavailable,
    TalkTime,
    Usage,
)
from bot.store.sqlite import DB_FILENAME, SqliteStore
from tests.store.checks import assert_version_3_guild_kept
from tests.store.locking import Locker, locked_store_file

V1_SCHEMA = (
    "CREATE TABLE guild_settings (guild_id INTEGER PRIMARY KEY, persona TEXT, voice TEXT, interruptions INTEGER "
    "NOT NULL DEFAULT 1, vad_threshold REAL NOT NULL DEFAULT 0.5, silence_ms INTEGER NOT NULL DEFAULT 500, "
    "transcripts INTEGER NOT NULL DEFAULT 0, transcript_channel_id INTEGER, daily_budget_min REAL)",
    "CREATE TABLE usage (guild_id INTEGER NOT NULL, day TEXT NOT NULL, seconds REAL NOT NULL DEFAULT 0, "
    "input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0, "
    "cost_usd REAL NOT NULL DEFAULT 0, PRIMARY KEY (guild_id, day))",
)
V2_SCHEMA = (*V1_SCHEMA, "ALTER TABLE guild_settings ADD COLUMN mode TEXT NOT NULL DEFAULT 'always'")
V3_SCHEMA = (
    *V2_SCHEMA,
    "CREATE TABLE user_privacy (guild_id INTEGER NOT NULL, user_id INTEGER NOT NULL, no_transcript INTEGER NOT NULL "
    "DEFAULT 0, no_listen INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (guild_id, user_id))",
    "CREATE TABLE user_usage (guild_id INTEGER NOT NULL, day TEXT NOT NULL, user_id INTEGER NOT NULL, "
    "seconds REAL NOT NULL DEFAULT 0, PRIMARY KEY (guild_id, day, user_id))",
)


@pytest.fixture
async def locked(tmp_path: Path) -> AsyncIterator[tuple[Path, Locker]]:
    """A migrated store file, write-locked by another process."""
    async with locked_store_file(tmp_path) as held:
        yield held


def old_database(path: Path, version: int, statements: tuple[str, ...]) -> None:
    """A file as an older bot left it: written by hand with that version's schema, not by today's code."""
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


async def test_migrates_a_version_1_file_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old_database(path, 1, (*V1_SCHEMA, "INSERT INTO guild_settings (guild_id, voice) VALUES (9, 'verse')"))
    store = await SqliteStore.open(path)
    assert await store.schema_version() == SCHEMA_VERSION
    assert await store.get(9) == GuildSettings(voice="verse", mode="always")


async def test_migrates_a_version_2_file_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite3"
    old_database(
        path,
        2,
        (
            *V2_SCHEMA,
            "INSERT INTO guild_settings (guild_id, voice, mode, transcripts) VALUES (9, 'verse', 'name', 1)",
            "INSERT INTO usage (guild_id, day, seconds, input_tokens, cost_usd) VALUES (9, '2026-11-20', 42, 7, 0.5)",
        ),
    )
    store = await SqliteStore.open(path)
    assert await store.schema_version() == SCHEMA_VERSION == 5
    assert await store.get(9) == GuildSettings(voice="verse", mode="name", transcripts=True)
    assert await store.usage(9, "2026-11-20") == Usage(seconds=42.0, input_tokens=7, cost_usd=0.5)
    assert await store.privacy(9, 1) == Privacy()  # the new tables exist and work
    await store.set_privacy(9, 1, no_listen=True)
    await store.add_user_usage(9, "2026-11-20", 1, 12.0)
    await store.close()
    again = await SqliteStore.open(path)  # and a second open does not migrate again
    assert await again.schema_version() == SCHEMA_VERSION
    assert await again.privacy(9, 1) == Privacy(no_listen=True)
    assert await again.top_talkers(9, "2026-11-01") == [TalkTime(1, 12.0)]


async def test_migrates_a_version_3_file_to_turn_detection_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite3"
    old_database(
        path,
        3,
        (
            *V3_SCHEMA,
            "INSERT INTO guild_settings (guild_id, voice, silence_ms) VALUES (9, 'verse', 800)",
            "INSERT INTO user_privacy (guild_id, user_id, no_listen) VALUES (9, 1, 1)",
        ),
    )
    store = await SqliteStore.open(path)
    await assert_version_3_guild_kept(store)
    await store.close()


async def test_a_newer_schema_or_unreadable_path_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this bot"):
        await SqliteStore.open(path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open the settings store"):
        await SqliteStore.open(blocker / "sub" / "db.sqlite3")


async def test_only_ids_and_numbers_are_stored_about_users(tmp_path: Path) -> None:
    store = await SqliteStore.in_data_dir(tmp_path)
    await store.add_user_usage(1, "2026-11-24", 10, 12.5)
    await store.set_privacy(1, 10, no_transcript=True)
    await store.close()
    db = sqlite3.connect(tmp_path / "voicebot.sqlite3")
    for table in ("user_usage", "user_privacy"):
        types = {row[2] for row in db.execute(f"PRAGMA table_info({table})") if row[1] != "day"}
        assert types <= {"INTEGER", "REAL"}, (table, types)
    db.close()


# -- a locked file never stalls the event loop ---------------------------------------------------------------------


class Ticker:
    """Counts the event loop's turns: a task that wakes every few milliseconds while the loop is free."""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._ticked = asyncio.Event()

    async def _run(self) -> None:
        while True:
            self.ticks.append(time.monotonic())
            self._ticked.set()
            await asyncio.sleep(0.005)

    async def turns(self, count: int) -> None:
        """Return after the ticker ran ``count`` more times."""
        for _ in range(count):
            self._ticked.clear()
            await self._ticked.wait()

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def between(self, start: float, end: float) -> int:
        return sum(1 for t in self.ticks if start < t < end)


@pytest.fixture
async def ticker() -> AsyncIterator[Ticker]:
    with Ticker() as running:
        yield running


async def test_a_write_on_a_locked_file_fails_clearly_while_the_loop_keeps_ticking(
    locked: tuple[Path, Locker], ticker: Ticker
) -> None:
    path, _locker = locked
    store = await SqliteStore.open(path, busy_timeout_s=0.5)
    await asyncio.sleep(0.02)  # the ticker is running
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="locked by another process"):
        await store.update(1, {"voice": "ash"})
    ended = time.monotonic()
    # Had the write run on the loop, the ticker could not have run between its start and its end.
    assert ticker.between(started, ended) >= 2
    assert await store.get(1) == GuildSettings()  # reads still work under a write lock (WAL); nothing was written
    await store.close()


async def test_a_write_waits_off_the_loop_and_lands_once_the_lock_is_released(
    locked: tuple[Path, Locker], ticker: Ticker
) -> None:
    path, locker = locked
    store = await SqliteStore.open(path, busy_timeout_s=20.0, call_timeout_s=30.0)
    write = asyncio.create_task(store.update(1, {"voice": "ash"}))
    await ticker.turns(5)
    assert not write.done()  # still waiting for the lock, and the loop went on meanwhile
    await locker.release()
    assert (await write).voice == "ash"
    assert (await store.get(1)).voice == "ash"
    await store.close()


async def test_a_call_that_outlasts_its_bound_fails_and_the_store_recovers(
    locked: tuple[Path, Locker], ticker: Ticker
) -> None:
    path, locker = locked
    store = await SqliteStore.open(path, busy_timeout_s=20.0, call_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(StoreOutcomeUnknown, match=r"did not answer within 0.3 s \(adding talk time\)") as caught:
        await store.add_user_usage(1, "2026-11-24", 10, 1.0)
    assert ticker.between(started, time.monotonic()) >= 2
    queued = asyncio.create_task(store.add_user_usage(1, "2026-11-24", 30, 3.0))  # behind it on the thread
    with pytest.raises(StoreUnavailable, match="did not answer") as never_ran:
        await queued
    assert not isinstance(never_ran.value, StoreOutcomeUnknown)  # cancelled before it started: it never lands
    await locker.release()
    # The thread finishes the write it had started once the lock goes (its outcome says so); later calls succeed.
    await caught.value.outcome
    await store.add_user_usage(1, "2026-11-24", 20, 2.0)
    assert await store.top_talkers(1, "2026-11-01") == [TalkTime(20, 2.0), TalkTime(10, 1.0)]
    await store.close()


async def test_a_closed_store_refuses_calls_clearly(tmp_path: Path) -> None:
    store = await SqliteStore.in_data_dir(tmp_path)
    await store.close()
    await store.close()  # harmless
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.get(1)


async def test_opening_waits_for_a_locked_fresh_file_off_the_loop(tmp_path: Path, ticker: Ticker) -> None:
    """A bot process starting while another connection holds a brand-new file's lock waits for it, off the loop."""
    path = tmp_path / DB_FILENAME
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    opening = asyncio.create_task(SqliteStore.open(path, busy_timeout_s=0.2, open_timeout_s=20.0))
    await ticker.turns(5)
    assert not opening.done()
    blocker.execute("COMMIT")
    blocker.close()
    store = await opening
    assert await store.schema_version() == SCHEMA_VERSION
    await store.close()
