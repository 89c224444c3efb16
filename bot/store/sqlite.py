"""The embedded store: one SQLite file (``DATA_DIR/voicebot.sqlite3``), worked on by one thread of its own.

Nothing here runs on the event loop. Each :class:`SqliteStore` owns one worker thread and one connection made on
it, so writes keep their order; a call hands its work to that thread and awaits the result for at most
:data:`~bot.store.interface.STORE_CALL_TIMEOUT_S`. A file locked by another process makes SQLite wait up to
:data:`BUSY_TIMEOUT_S` on the worker thread (never on the loop), then the call fails with
:class:`~bot.store.records.StoreUnavailable`.

Opening creates or migrates the schema in one ``BEGIN IMMEDIATE`` transaction that reads ``user_version``, applies
the missing migrations and sets the new version, so several processes starting at once on a fresh ``DATA_DIR``
serialise on the file's write lock: one migrates, the others find the work done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from bot.store.interface import STORE_CALL_TIMEOUT_S
from bot.store.records import (
    SCHEMA_VERSION,
    SETTING_NAMES,
    GuildSettings,
    Privacy,
    StoreError,
    StoreOutcomeUnknown,
    StoreRows,
    StoreUnavailable,
    TalkTime,
    Usage,
    check_day,
    check_flag,
    check_id,
    check_limit,
    check_persona,
    check_seconds,
    export_document,
    merged_privacy,
    merged_settings,
)

_log = logging.getLogger(__name__)

DB_FILENAME = "voicebot.sqlite3"
#: How long SQLite waits for another connection's lock (on the worker thread) before "database is locked".
BUSY_TIMEOUT_S = 2.0
#: Longest wait to open the file and create or migrate the schema (other processes may be migrating it).
OPEN_TIMEOUT_S = 30.0

T = TypeVar("T")


def _migration_1(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE guild_settings (
            guild_id INTEGER PRIMARY KEY,
            persona TEXT,
            voice TEXT,
            interruptions INTEGER NOT NULL DEFAULT 1,
            vad_threshold REAL NOT NULL DEFAULT 0.5,
            silence_ms INTEGER NOT NULL DEFAULT 500,
            transcripts INTEGER NOT NULL DEFAULT 0,
            transcript_channel_id INTEGER,
            daily_budget_min REAL
        )"""
    )
    db.execute(
        """CREATE TABLE usage (
            guild_id INTEGER NOT NULL,
            day TEXT NOT NULL,
            seconds REAL NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (guild_id, day)
        )"""
    )


def _migration_2(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE guild_settings ADD COLUMN mode TEXT NOT NULL DEFAULT 'always'")


def _migration_3(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE user_privacy (
            guild_id INTEGER NOT NULL,
            user_id INTEGER NOT NULL,
            no_transcript INTEGER NOT NULL DEFAULT 0,
            no_listen INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (guild_id, user_id)
        )"""
    )
    db.execute(
        """CREATE TABLE user_usage (
            guild_id INTEGER NOT NULL,
            day TEXT NOT NULL,
            user_id INTEGER NOT NULL,
            seconds REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (guild_id, day, user_id)
        )"""
    )


def _migration_4(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE guild_settings ADD COLUMN turn_detection TEXT NOT NULL DEFAULT 'server_vad'")
    db.execute("ALTER TABLE guild_settings ADD COLUMN eagerness TEXT NOT NULL DEFAULT 'auto'")


def _migration_5(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE guild_personas (
            guild_id INTEGER NOT NULL,
            key TEXT NOT NULL,
            toml TEXT NOT NULL,
            PRIMARY KEY (guild_id, key)
        )"""
    )


#: Migration ``n`` (1-based) brings the schema from version n-1 to n. Append; never edit a released one.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
)
assert len(MIGRATIONS) == SCHEMA_VERSION


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, holding the file's write lock from the start: committed when the block ends, rolled
    back when it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _schema_version(db: sqlite3.Connection) -> int:
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    return version


def _migrate(db: sqlite3.Connection) -> None:
    """Create or migrate the schema: check and change in one write transaction, so concurrent openers serialise.
    A file already at this version needs no write lock (opening it while another process writes does not wait)."""
    if _schema_version(db) == SCHEMA_VERSION:
        return
    with _transaction(db):
        current = _schema_version(db)
        if current > SCHEMA_VERSION:
            raise StoreError(f"the settings store has schema version {current}, newer than this bot's {SCHEMA_VERSION}")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version - 1](db)
            _log.info("settings store migrating to schema version %d", version)
        if current != SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _retrieved(outcome: asyncio.Future[Any]) -> None:
    if not outcome.cancelled():
        outcome.exception()


def _connect(path: Path, busy_timeout_s: float, deadline: float, must_exist: bool) -> sqlite3.Connection:
    """Open ``path`` (creating it unless ``must_exist``) in WAL mode and bring its schema up to date; retried while
    another process holds the lock, until ``deadline`` (``time.monotonic()``)."""
    if must_exist and not path.is_file():
        raise StoreError(f"there is no SQLite store at {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s)
    try:
        while True:
            try:
                db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
                db.execute("PRAGMA journal_mode = WAL")
                _migrate(db)
                return db
            except sqlite3.OperationalError as error:
                if not _is_locked(error):
                    raise
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"cannot open the settings store {str(path)!r}: another process kept it locked"
                    ) from error
                _log.info("settings store %s is busy (another process is opening it); waiting", path)
    except BaseException:
        db.close()
        raise


def _is_locked(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


# -- the work, run on the store's thread -------------------------------------------------------------------------


def _get(db: sqlite3.Connection, guild_id: int) -> GuildSettings | None:
    columns = sorted(SETTING_NAMES)
    row = db.execute(f"SELECT {', '.join(columns)} FROM guild_settings WHERE guild_id = ?", (guild_id,)).fetchone()
    if row is None:
        return None
    values: dict[str, Any] = dict(zip(columns, row, strict=True))
    values["interruptions"] = bool(values["interruptions"])
    values["transcripts"] = bool(values["transcripts"])
    return GuildSettings(**values)


def _put_settings(db: sqlite3.Connection, guild_id: int, settings: GuildSettings) -> None:
    row = dataclasses.asdict(settings)
    columns = sorted(row)
    placeholders = ", ".join("?" for _ in columns)
    assignments = ", ".join(f"{c} = excluded.{c}" for c in columns)
    db.execute(
        f"INSERT INTO guild_settings (guild_id, {', '.join(columns)}) VALUES (?, {placeholders}) "
        f"ON CONFLICT (guild_id) DO UPDATE SET {assignments}",
        (guild_id, *(row[c] for c in columns)),
    )


def _update(db: sqlite3.Connection, guild_id: int, changes: dict[str, Any]) -> GuildSettings:
    with _transaction(db):
        merged = merged_settings(_get(db, guild_id) or GuildSettings(), changes)
        _put_settings(db, guild_id, merged)
    return merged


def _privacy(db: sqlite3.Connection, guild_id: int, user_id: int) -> Privacy:
    row = db.execute(
        "SELECT no_transcript, no_listen FROM user_privacy WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
    ).fetchone()
    return Privacy() if row is None else Privacy(no_transcript=bool(row[0]), no_listen=bool(row[1]))


def _put_privacy(db: sqlite3.Connection, guild_id: int, user_id: int, choice: Privacy) -> None:
    if choice == Privacy():
        db.execute("DELETE FROM user_privacy WHERE guild_id = ? AND user_id = ?", (guild_id, user_id))
        return
    db.execute(
        "INSERT INTO user_privacy (guild_id, user_id, no_transcript, no_listen) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (guild_id, user_id) DO UPDATE SET no_transcript = excluded.no_transcript, "
        "no_listen = excluded.no_listen",
        (guild_id, user_id, int(choice.no_transcript), int(choice.no_listen)),
    )


def _set_privacy(
    db: sqlite3.Connection, guild_id: int, user_id: int, no_transcript: bool | None, no_listen: bool | None
) -> Privacy:
    with _transaction(db):
        new = merged_privacy(_privacy(db, guild_id, user_id), no_transcript, no_listen)
        _put_privacy(db, guild_id, user_id, new)
    return new


def _rows(db: sqlite3.Connection, guild_id: int | None) -> StoreRows:
    where, args = ("", ()) if guild_id is None else (" WHERE guild_id = ?", (guild_id,))
    rows = StoreRows()
    ids = [r[0] for r in db.execute(f"SELECT guild_id FROM guild_settings{where}", args)]
    for gid in ids:
        settings = _get(db, gid)
        assert settings is not None
        rows.settings[gid] = settings
    for gid, day, s, i, o, c in db.execute(
        f"SELECT guild_id, day, seconds, input_tokens, output_tokens, cost_usd FROM usage{where}", args
    ):
        rows.usage[(gid, day)] = Usage(seconds=float(s), input_tokens=int(i), output_tokens=int(o), cost_usd=float(c))
    for gid, day, uid, s in db.execute(f"SELECT guild_id, day, user_id, seconds FROM user_usage{where}", args):
        rows.user_usage[(gid, day, uid)] = float(s)
    query = f"SELECT guild_id, user_id, no_transcript, no_listen FROM user_privacy{where}"
    for gid, uid, nt, nl in db.execute(query, args):
        rows.privacy[(gid, uid)] = Privacy(no_transcript=bool(nt), no_listen=bool(nl))
    for gid, key, toml in db.execute(f"SELECT guild_id, key, toml FROM guild_personas{where}", args):
        rows.personas[(gid, key)] = toml
    return rows


def _put_rows(db: sqlite3.Connection, rows: StoreRows) -> None:
    with _transaction(db):
        for gid, settings in rows.settings.items():
            _put_settings(db, gid, settings)
        for (gid, day), u in rows.usage.items():
            db.execute(
                "INSERT INTO usage (guild_id, day, seconds, input_tokens, output_tokens, cost_usd) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, day) DO UPDATE SET seconds = excluded.seconds, "
                "input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, "
                "cost_usd = excluded.cost_usd",
                (gid, day, u.seconds, u.input_tokens, u.output_tokens, u.cost_usd),
            )
        for (gid, day, uid), seconds in rows.user_usage.items():
            db.execute(
                "INSERT INTO user_usage (guild_id, day, user_id, seconds) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (guild_id, day, user_id) DO UPDATE SET seconds = excluded.seconds",
                (gid, day, uid, seconds),
            )
        for (gid, uid), choice in rows.privacy.items():
            _put_privacy(db, gid, uid, choice)
        for (gid, key), toml in rows.personas.items():
            db.execute(
                "INSERT INTO guild_personas (guild_id, key, toml) VALUES (?, ?, ?) "
                "ON CONFLICT (guild_id, key) DO UPDATE SET toml = excluded.toml",
                (gid, key, toml),
            )


def _put_persona(db: sqlite3.Connection, guild_id: int, key: str, toml: str, max_count: int) -> bool:
    with _transaction(db):
        exists = db.execute("SELECT 1 FROM guild_personas WHERE guild_id = ? AND key = ?", (guild_id, key)).fetchone()
        if exists is None:
            count = db.execute("SELECT COUNT(*) FROM guild_personas WHERE guild_id = ?", (guild_id,)).fetchone()[0]
            if count >= max_count:
                raise StoreError(f"this server already has {count} personas, the most it may keep")
        db.execute(
            "INSERT INTO guild_personas (guild_id, key, toml) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id, key) DO UPDATE SET toml = excluded.toml",
            (guild_id, key, toml),
        )
        return exists is None


def _delete(db: sqlite3.Connection, tables: tuple[str, ...], scope: str, args: tuple[object, ...]) -> int:
    with _transaction(db):
        return sum(db.execute(f"DELETE FROM {table} WHERE {scope}", args).rowcount for table in tables)


class SqliteStore:
    """The store in one SQLite file; open with :meth:`open` (or :meth:`in_data_dir`), end with :meth:`close`."""

    def __init__(
        self,
        path: Path,
        executor: concurrent.futures.ThreadPoolExecutor,
        db: sqlite3.Connection,
        call_timeout_s: float,
    ) -> None:
        """Use :meth:`open`: it makes the connection on ``executor``'s one thread."""
        self.path = path
        self._executor = executor
        self._db = db
        self._call_timeout_s = call_timeout_s
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        call_timeout_s: float = STORE_CALL_TIMEOUT_S,
        open_timeout_s: float = OPEN_TIMEOUT_S,
        must_exist: bool = False,
    ) -> SqliteStore:
        """Open (or create) the file at ``path`` and bring its schema up to date, off the event loop.

        Raises:
            StoreError: the file cannot be opened or created, or holds a newer schema than this bot knows.
        """
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        deadline = time.monotonic() + open_timeout_s
        try:
            async with asyncio.timeout(open_timeout_s + busy_timeout_s):
                db = await asyncio.wrap_future(executor.submit(_connect, path, busy_timeout_s, deadline, must_exist))
        except (OSError, sqlite3.Error, TimeoutError, StoreError) as error:
            executor.shutdown(wait=False, cancel_futures=True)
            if isinstance(error, StoreError):
                raise
            reason = "it stayed locked by another process" if isinstance(error, TimeoutError) else error
            raise StoreError(f"cannot open the settings store {str(path)!r}: {reason}") from error
        return cls(path, executor, db, call_timeout_s)

    @classmethod
    async def in_data_dir(
        cls, data_dir: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S, call_timeout_s: float = STORE_CALL_TIMEOUT_S
    ) -> SqliteStore:
        return await cls.open(data_dir / DB_FILENAME, busy_timeout_s=busy_timeout_s, call_timeout_s=call_timeout_s)

    @property
    def description(self) -> str:
        return f"the SQLite file {str(self.path)!r}"

    async def _call(self, what: str, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(db, *args)`` on the store's thread; wait at most the call timeout."""
        if self._closed:
            raise StoreUnavailable("the settings store is closed")
        future = self._executor.submit(self._guarded, what, work, *args)
        try:
            async with asyncio.timeout(self._call_timeout_s):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            queued = future.cancel()  # still queued: it never runs; already running: it may still land
            _log.warning("settings store: %s took longer than %.1f s", what, self._call_timeout_s)
            message = f"the settings store did not answer within {self._call_timeout_s:g} s ({what})"
            if queued:
                raise StoreUnavailable(message) from None
            outcome = asyncio.wrap_future(future)
            outcome.add_done_callback(_retrieved)  # whoever does not wait for it is not warned about its error
            raise StoreOutcomeUnknown(message, outcome) from None

    def _guarded(self, what: str, work: Callable[..., T], *args: Any) -> T:
        try:
            return work(self._db, *args)
        except sqlite3.Error as error:
            if _is_locked(error):
                raise StoreUnavailable(
                    f"the settings store is locked by another process ({what} waited {BUSY_TIMEOUT_S:g} s)"
                ) from error
            raise StoreUnavailable(f"the settings store failed ({what}): {error}") from error

    async def schema_version(self) -> int:
        return await self._call("reading the schema version", _schema_version)

    async def get(self, guild_id: int) -> GuildSettings:
        return await self._call("reading settings", _get, guild_id) or GuildSettings()

    async def update(self, guild_id: int, changes: Mapping[str, Any]) -> GuildSettings:
        changes = dict(changes)
        merged_settings(GuildSettings(), changes)  # refuse a bad value before any I/O
        return await self._call("saving settings", _update, guild_id, changes)

    async def add_usage(
        self,
        guild_id: int,
        day: str,
        *,
        seconds: float = 0.0,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        args = (guild_id, day, seconds, input_tokens, output_tokens, cost_usd)

        def add(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    "INSERT INTO usage (guild_id, day, seconds, input_tokens, output_tokens, cost_usd) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, day) DO UPDATE SET "
                    "seconds = seconds + excluded.seconds, input_tokens = input_tokens + excluded.input_tokens, "
                    "output_tokens = output_tokens + excluded.output_tokens, cost_usd = cost_usd + excluded.cost_usd",
                    args,
                )

        await self._call("adding usage", add)

    async def usage(self, guild_id: int, first_day: str, last_day: str | None = None) -> Usage:
        def read(db: sqlite3.Connection) -> Usage:
            row = db.execute(
                "SELECT COALESCE(SUM(seconds), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
                "COALESCE(SUM(cost_usd), 0) FROM usage WHERE guild_id = ? AND day BETWEEN ? AND ?",
                (guild_id, first_day, last_day or first_day),
            ).fetchone()
            return Usage(float(row[0]), int(row[1]), int(row[2]), float(row[3]))

        return await self._call("reading usage", read)

    async def usage_since(self, guild_id: int, since_day: str) -> Usage:
        return await self.usage(guild_id, check_day(since_day), "9999-12-31")

    async def add_user_usage(self, guild_id: int, day: str, user_id: int, seconds: float) -> None:
        args = (guild_id, check_day(day), check_id("user_id", user_id), check_seconds(seconds))

        def add(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    "INSERT INTO user_usage (guild_id, day, user_id, seconds) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (guild_id, day, user_id) DO UPDATE SET seconds = seconds + excluded.seconds",
                    args,
                )

        await self._call("adding talk time", add)

    async def top_talkers(self, guild_id: int, since_day: str, limit: int = 5) -> list[TalkTime]:
        args = (guild_id, check_day(since_day), check_limit(limit))

        def read(db: sqlite3.Connection) -> list[TalkTime]:
            rows = db.execute(
                "SELECT user_id, SUM(seconds) AS total FROM user_usage WHERE guild_id = ? AND day >= ? "
                "GROUP BY user_id HAVING total > 0 ORDER BY total DESC, user_id LIMIT ?",
                args,
            ).fetchall()
            return [TalkTime(user_id=int(user_id), seconds=float(total)) for user_id, total in rows]

        return await self._call("reading talk time", read)

    async def privacy(self, guild_id: int, user_id: int) -> Privacy:
        return await self._call("reading privacy choices", _privacy, guild_id, user_id)

    async def set_privacy(
        self, guild_id: int, user_id: int, *, no_transcript: bool | None = None, no_listen: bool | None = None
    ) -> Privacy:
        check_id("user_id", user_id)
        check_flag("no_transcript", no_transcript)
        check_flag("no_listen", no_listen)
        return await self._call("saving privacy choices", _set_privacy, guild_id, user_id, no_transcript, no_listen)

    async def opted_out(self, guild_id: int) -> dict[int, Privacy]:
        def read(db: sqlite3.Connection) -> dict[int, Privacy]:
            rows = db.execute(
                "SELECT user_id, no_transcript, no_listen FROM user_privacy WHERE guild_id = ? "
                "AND (no_transcript != 0 OR no_listen != 0) ORDER BY user_id",
                (guild_id,),
            ).fetchall()
            return {int(uid): Privacy(no_transcript=bool(nt), no_listen=bool(nl)) for uid, nt, nl in rows}

        return await self._call("reading privacy choices", read)

    async def personas(self, guild_id: int) -> dict[str, str]:
        check_id("guild_id", guild_id)

        def read(db: sqlite3.Connection) -> dict[str, str]:
            query = "SELECT key, toml FROM guild_personas WHERE guild_id = ? ORDER BY key"
            return {key: toml for key, toml in db.execute(query, (guild_id,))}

        return await self._call("reading the server's personas", read)

    async def persona(self, guild_id: int, key: str) -> str | None:
        check_id("guild_id", guild_id)

        def read(db: sqlite3.Connection) -> str | None:
            query = "SELECT toml FROM guild_personas WHERE guild_id = ? AND key = ?"
            row = db.execute(query, (guild_id, key)).fetchone()
            return None if row is None else str(row[0])

        return await self._call("reading a server persona", read)

    async def put_persona(self, guild_id: int, key: str, toml: str, *, max_count: int) -> bool:
        check_id("guild_id", guild_id)
        check_persona(key, toml)
        return await self._call("saving a server persona", _put_persona, guild_id, key, toml, max_count)

    async def delete_persona(self, guild_id: int, key: str) -> bool:
        check_id("guild_id", guild_id)
        scope, args = "guild_id = ? AND key = ?", (guild_id, key)
        return await self._call("deleting a server persona", _delete, ("guild_personas",), scope, args) > 0

    async def export_guild(self, guild_id: int) -> dict[str, Any]:
        def read(db: sqlite3.Connection) -> dict[str, Any]:
            rows = _rows(db, guild_id)
            return export_document(guild_id, _schema_version(db), rows.settings.get(guild_id), rows)

        return await self._call("exporting", read)

    async def delete_guild(self, guild_id: int, *, forget_choices: bool = False) -> int:
        kept = ("guild_settings", "usage", "user_usage", "guild_personas")
        tables = (*kept, "user_privacy") if forget_choices else kept
        removed = await self._call("deleting a server's data", _delete, tables, "guild_id = ?", (guild_id,))
        _log.info("deleted stored data of guild %s (%d rows)", guild_id, removed)
        return removed

    async def delete_user(self, user_id: int, guild_id: int | None = None, *, forget_choices: bool = False) -> int:
        scope = "user_id = ?" if guild_id is None else "user_id = ? AND guild_id = ?"
        args: tuple[int, ...] = (user_id,) if guild_id is None else (user_id, guild_id)
        tables = ("user_usage", "user_privacy") if forget_choices else ("user_usage",)
        removed = await self._call("deleting a member's data", _delete, tables, scope, args)
        _log.info("deleted stored data of user %s (%d rows)", user_id, removed)
        return removed

    async def rows(self, guild_id: int | None = None) -> StoreRows:
        return await self._call("reading every row", _rows, guild_id)

    async def put_rows(self, rows: StoreRows) -> None:
        await self._call("writing rows", _put_rows, rows)

    async def close(self) -> None:
        """Checkpoint the write-ahead log and close the file, on the store's thread. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True

        def finish(db: sqlite3.Connection) -> None:
            try:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                db.close()

        future = self._executor.submit(self._guarded, "closing", finish)
        try:
            async with asyncio.timeout(self._call_timeout_s):
                await asyncio.wrap_future(future)
        except (TimeoutError, StoreError) as error:
            _log.warning("settings store %s: closing did not finish cleanly: %s", self.path, error or "timed out")
        finally:
            self._executor.shutdown(wait=False)
