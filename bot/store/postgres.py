"""The shared store: a PostgreSQL database (``DATABASE_URL=postgresql://...``), reached through ``asyncpg``.

``asyncpg`` is asynchronous, so nothing here blocks the event loop; a small pool (:data:`POOL_MAX_SIZE` connections)
serves the process's calls, each bounded by :data:`~bot.store.interface.STORE_CALL_TIMEOUT_S`. The tables and their
meaning are SQLite's (:mod:`bot.store.sqlite`), with Postgres types (``BIGINT`` ids, ``BOOLEAN`` flags).

Opening creates or migrates the schema in one transaction holding a transaction-scoped advisory lock
(:data:`MIGRATION_LOCK_KEY`), and the version lives in a one-row table: several processes starting at once serialise
on the lock; one migrates, the others find the work done.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bot.secret import Secret
from bot.store.interface import STORE_CALL_TIMEOUT_S
from bot.store.records import (
    SCHEMA_VERSION,
    SETTING_NAMES,
    GuildSettings,
    Privacy,
    StoreError,
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

POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 4
#: Longest wait to connect and create or migrate the schema (other processes may hold the migration lock).
OPEN_TIMEOUT_S = 30.0
#: The advisory lock every bot process takes to migrate ("voicebot" in ASCII, as a 64-bit key).
MIGRATION_LOCK_KEY = int.from_bytes(b"voicebot", "big")
#: The first key of the per-guild advisory lock that orders one server's persona writes ("voic", a 32-bit key).
PERSONA_LOCK_CLASS = int.from_bytes(b"voic", "big")
URL_SCHEMES = ("postgresql", "postgres")

T = TypeVar("T")
#: A pooled connection, as the calls use it.
Db: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

#: Migration ``n`` (1-based) brings the schema from version n-1 to n; the same steps as SQLite's. Append only.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE guild_settings (
            guild_id BIGINT PRIMARY KEY,
            persona TEXT,
            voice TEXT,
            interruptions BOOLEAN NOT NULL DEFAULT TRUE,
            vad_threshold DOUBLE PRECISION NOT NULL DEFAULT 0.5,
            silence_ms INTEGER NOT NULL DEFAULT 500,
            transcripts BOOLEAN NOT NULL DEFAULT FALSE,
            transcript_channel_id BIGINT,
            daily_budget_min DOUBLE PRECISION
        )""",
        """CREATE TABLE usage (
            guild_id BIGINT NOT NULL,
            day TEXT NOT NULL,
            seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            PRIMARY KEY (guild_id, day)
        )""",
    ),
    ("ALTER TABLE guild_settings ADD COLUMN mode TEXT NOT NULL DEFAULT 'always'",),
    (
        """CREATE TABLE user_privacy (
            guild_id BIGINT NOT NULL,
            user_id BIGINT NOT NULL,
            no_transcript BOOLEAN NOT NULL DEFAULT FALSE,
            no_listen BOOLEAN NOT NULL DEFAULT FALSE,
            PRIMARY KEY (guild_id, user_id)
        )""",
        """CREATE TABLE user_usage (
            guild_id BIGINT NOT NULL,
            day TEXT NOT NULL,
            user_id BIGINT NOT NULL,
            seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
            PRIMARY KEY (guild_id, day, user_id)
        )""",
    ),
    (
        "ALTER TABLE guild_settings ADD COLUMN turn_detection TEXT NOT NULL DEFAULT 'server_vad'",
        "ALTER TABLE guild_settings ADD COLUMN eagerness TEXT NOT NULL DEFAULT 'auto'",
    ),
    (
        """CREATE TABLE guild_personas (
            guild_id BIGINT NOT NULL,
            key TEXT NOT NULL,
            toml TEXT NOT NULL,
            PRIMARY KEY (guild_id, key)
        )""",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION

_SETTING_COLUMNS = sorted(SETTING_NAMES)
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return urllib.parse.urlsplit(url).scheme in URL_SCHEMES


def describe_url(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


async def _schema_version(db: Db) -> int:
    exists = await db.fetchval("SELECT to_regclass('voicebot_schema') IS NOT NULL")
    if not exists:
        return 0
    version = await db.fetchval("SELECT version FROM voicebot_schema")
    return int(version or 0)


async def _migrate(db: Db) -> None:
    """Create or migrate the schema in one transaction under the advisory lock."""
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        current = await _schema_version(db)
        if current > SCHEMA_VERSION:
            raise StoreError(f"the settings store has schema version {current}, newer than this bot's {SCHEMA_VERSION}")
        if current == 0:
            await db.execute("CREATE TABLE voicebot_schema (version INTEGER NOT NULL)")
            await db.execute("INSERT INTO voicebot_schema (version) VALUES (0)")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                await db.execute(statement)
            _log.info("settings store migrating to schema version %d", version)
        await db.execute("UPDATE voicebot_schema SET version = $1", SCHEMA_VERSION)


def _settings(row: asyncpg.Record) -> GuildSettings:
    return GuildSettings(**{name: row[name] for name in _SETTING_COLUMNS})


async def _put_settings(db: Db, guild_id: int, settings: GuildSettings) -> None:
    row = dataclasses.asdict(settings)
    placeholders = ", ".join(f"${n}" for n in range(2, len(_SETTING_COLUMNS) + 2))
    assignments = ", ".join(f"{c} = excluded.{c}" for c in _SETTING_COLUMNS)
    await db.execute(
        f"INSERT INTO guild_settings (guild_id, {', '.join(_SETTING_COLUMNS)}) VALUES ($1, {placeholders}) "
        f"ON CONFLICT (guild_id) DO UPDATE SET {assignments}",
        guild_id,
        *(row[c] for c in _SETTING_COLUMNS),
    )


async def _privacy(db: Db, guild_id: int, user_id: int) -> Privacy:
    row = await db.fetchrow(
        "SELECT no_transcript, no_listen FROM user_privacy WHERE guild_id = $1 AND user_id = $2", guild_id, user_id
    )
    return Privacy() if row is None else Privacy(no_transcript=row[0], no_listen=row[1])


async def _put_privacy(db: Db, guild_id: int, user_id: int, choice: Privacy) -> None:
    if choice == Privacy():
        await db.execute("DELETE FROM user_privacy WHERE guild_id = $1 AND user_id = $2", guild_id, user_id)
        return
    await db.execute(
        "INSERT INTO user_privacy (guild_id, user_id, no_transcript, no_listen) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (guild_id, user_id) DO UPDATE SET no_transcript = excluded.no_transcript, "
        "no_listen = excluded.no_listen",
        guild_id,
        user_id,
        choice.no_transcript,
        choice.no_listen,
    )


async def _rows(db: Db, guild_id: int | None) -> StoreRows:
    where, args = ("", ()) if guild_id is None else (" WHERE guild_id = $1", (guild_id,))
    rows = StoreRows()
    for r in await db.fetch(f"SELECT guild_id, {', '.join(_SETTING_COLUMNS)} FROM guild_settings{where}", *args):
        rows.settings[r["guild_id"]] = _settings(r)
    query = f"SELECT guild_id, day, seconds, input_tokens, output_tokens, cost_usd FROM usage{where}"
    for gid, day, s, i, o, c in await db.fetch(query, *args):
        rows.usage[(gid, day)] = Usage(seconds=s, input_tokens=int(i), output_tokens=int(o), cost_usd=c)
    for gid, day, uid, s in await db.fetch(f"SELECT guild_id, day, user_id, seconds FROM user_usage{where}", *args):
        rows.user_usage[(gid, day, uid)] = s
    query = f"SELECT guild_id, user_id, no_transcript, no_listen FROM user_privacy{where}"
    for gid, uid, nt, nl in await db.fetch(query, *args):
        rows.privacy[(gid, uid)] = Privacy(no_transcript=nt, no_listen=nl)
    for gid, key, toml in await db.fetch(f"SELECT guild_id, key, toml FROM guild_personas{where}", *args):
        rows.personas[(gid, key)] = toml
    return rows


class PostgresStore:
    """The store in a PostgreSQL database; open with :meth:`connect`, end with :meth:`close`."""

    def __init__(self, pool: asyncpg.Pool, url: Secret, call_timeout_s: float) -> None:
        """Use :meth:`connect`."""
        self._pool = pool
        self._url = url
        self._call_timeout_s = call_timeout_s
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: Secret,
        *,
        call_timeout_s: float = STORE_CALL_TIMEOUT_S,
        open_timeout_s: float = OPEN_TIMEOUT_S,
        max_size: int = POOL_MAX_SIZE,
    ) -> PostgresStore:
        """Connect a small pool to ``url`` and bring the schema up to date.

        Raises:
            StoreError: the server cannot be reached, refuses the login, or holds a newer schema than this bot's.
        """
        where = describe_url(url.reveal())
        pool: asyncpg.Pool | None = None
        try:
            async with asyncio.timeout(open_timeout_s):
                pool = await asyncpg.create_pool(url.reveal(), min_size=POOL_MIN_SIZE, max_size=max_size)
                async with pool.acquire() as db:
                    await _migrate(db)
        except (*_ERRORS, TimeoutError, StoreError) as error:
            if pool is not None:
                pool.terminate()
            if isinstance(error, StoreError):
                raise
            reason = f"no answer within {open_timeout_s:g} s" if isinstance(error, TimeoutError) else error
            raise StoreError(f"cannot open the settings store {where}: {reason}") from error
        return cls(pool, url, call_timeout_s)

    @property
    def description(self) -> str:
        return f"the PostgreSQL database {describe_url(self._url.reveal())}"

    @contextlib.asynccontextmanager
    async def _connection(self, what: str) -> AsyncIterator[Db]:
        """A pooled connection for one call, the whole call bounded by the call timeout."""
        if self._closed:
            raise StoreUnavailable("the settings store is closed")
        try:
            async with asyncio.timeout(self._call_timeout_s), self._pool.acquire() as db:
                yield db
        except TimeoutError:
            _log.warning("settings store: %s took longer than %.1f s", what, self._call_timeout_s)
            raise StoreUnavailable(
                f"the settings store did not answer within {self._call_timeout_s:g} s ({what})"
            ) from None
        except _ERRORS as error:
            raise StoreUnavailable(f"the settings store failed ({what}): {error}") from error

    async def _call(self, what: str, work: Callable[[Db], Awaitable[T]]) -> T:
        async with self._connection(what) as db:
            return await work(db)

    async def _write(self, what: str, work: Callable[[Db], Awaitable[T]]) -> T:
        async with self._connection(what) as db, db.transaction():
            return await work(db)

    async def schema_version(self) -> int:
        return await self._call("reading the schema version", _schema_version)

    async def get(self, guild_id: int) -> GuildSettings:
        async def read(db: Db) -> GuildSettings:
            row = await db.fetchrow(
                f"SELECT {', '.join(_SETTING_COLUMNS)} FROM guild_settings WHERE guild_id = $1", guild_id
            )
            return GuildSettings() if row is None else _settings(row)

        return await self._call("reading settings", read)

    async def update(self, guild_id: int, changes: Mapping[str, Any]) -> GuildSettings:
        changes = dict(changes)
        merged_settings(GuildSettings(), changes)  # refuse a bad value before any I/O

        async def write(db: Db) -> GuildSettings:
            # The row exists (with the defaults) before it is read FOR UPDATE, so concurrent changes queue on it.
            await db.execute("INSERT INTO guild_settings (guild_id) VALUES ($1) ON CONFLICT DO NOTHING", guild_id)
            row = await db.fetchrow(
                f"SELECT {', '.join(_SETTING_COLUMNS)} FROM guild_settings WHERE guild_id = $1 FOR UPDATE", guild_id
            )
            assert row is not None  # inserted just before
            merged = merged_settings(_settings(row), changes)
            await _put_settings(db, guild_id, merged)
            return merged

        return await self._write("saving settings", write)

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
        async def write(db: Db) -> None:
            await db.execute(
                "INSERT INTO usage AS u (guild_id, day, seconds, input_tokens, output_tokens, cost_usd) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (guild_id, day) DO UPDATE SET "
                "seconds = u.seconds + excluded.seconds, input_tokens = u.input_tokens + excluded.input_tokens, "
                "output_tokens = u.output_tokens + excluded.output_tokens, cost_usd = u.cost_usd + excluded.cost_usd",
                guild_id,
                day,
                float(seconds),
                int(input_tokens),
                int(output_tokens),
                float(cost_usd),
            )

        await self._call("adding usage", write)

    async def usage(self, guild_id: int, first_day: str, last_day: str | None = None) -> Usage:
        async def read(db: Db) -> Usage:
            row = await db.fetchrow(
                "SELECT COALESCE(SUM(seconds), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
                "COALESCE(SUM(cost_usd), 0) FROM usage WHERE guild_id = $1 AND day BETWEEN $2 AND $3",
                guild_id,
                first_day,
                last_day or first_day,
            )
            assert row is not None  # an aggregate always has one row
            return Usage(float(row[0]), int(row[1]), int(row[2]), float(row[3]))

        return await self._call("reading usage", read)

    async def usage_since(self, guild_id: int, since_day: str) -> Usage:
        return await self.usage(guild_id, check_day(since_day), "9999-12-31")

    async def add_user_usage(self, guild_id: int, day: str, user_id: int, seconds: float) -> None:
        args = (guild_id, check_day(day), check_id("user_id", user_id), check_seconds(seconds))

        async def write(db: Db) -> None:
            await db.execute(
                "INSERT INTO user_usage AS u (guild_id, day, user_id, seconds) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (guild_id, day, user_id) DO UPDATE SET seconds = u.seconds + excluded.seconds",
                *args,
            )

        await self._call("adding talk time", write)

    async def top_talkers(self, guild_id: int, since_day: str, limit: int = 5) -> list[TalkTime]:
        args = (guild_id, check_day(since_day), check_limit(limit))

        async def read(db: Db) -> list[TalkTime]:
            rows = await db.fetch(
                "SELECT user_id, SUM(seconds) AS total FROM user_usage WHERE guild_id = $1 AND day >= $2 "
                "GROUP BY user_id HAVING SUM(seconds) > 0 ORDER BY total DESC, user_id LIMIT $3",
                *args,
            )
            return [TalkTime(user_id=int(r[0]), seconds=float(r[1])) for r in rows]

        return await self._call("reading talk time", read)

    async def privacy(self, guild_id: int, user_id: int) -> Privacy:
        return await self._call("reading privacy choices", lambda db: _privacy(db, guild_id, user_id))

    async def set_privacy(
        self, guild_id: int, user_id: int, *, no_transcript: bool | None = None, no_listen: bool | None = None
    ) -> Privacy:
        check_id("user_id", user_id)
        check_flag("no_transcript", no_transcript)
        check_flag("no_listen", no_listen)

        async def write(db: Db) -> Privacy:
            # A row to lock first, so two processes changing one member's choices do not lose either change.
            await db.execute(
                "INSERT INTO user_privacy (guild_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", guild_id, user_id
            )
            row = await db.fetchrow(
                "SELECT no_transcript, no_listen FROM user_privacy WHERE guild_id = $1 AND user_id = $2 FOR UPDATE",
                guild_id,
                user_id,
            )
            assert row is not None  # inserted just before
            new = merged_privacy(Privacy(no_transcript=row[0], no_listen=row[1]), no_transcript, no_listen)
            await _put_privacy(db, guild_id, user_id, new)
            return new

        return await self._write("saving privacy choices", write)

    async def opted_out(self, guild_id: int) -> dict[int, Privacy]:
        async def read(db: Db) -> dict[int, Privacy]:
            rows = await db.fetch(
                "SELECT user_id, no_transcript, no_listen FROM user_privacy WHERE guild_id = $1 "
                "AND (no_transcript OR no_listen) ORDER BY user_id",
                guild_id,
            )
            return {int(r[0]): Privacy(no_transcript=r[1], no_listen=r[2]) for r in rows}

        return await self._call("reading privacy choices", read)

    async def personas(self, guild_id: int) -> dict[str, str]:
        check_id("guild_id", guild_id)

        async def read(db: Db) -> dict[str, str]:
            query = "SELECT key, toml FROM guild_personas WHERE guild_id = $1 ORDER BY key"
            return {r["key"]: r["toml"] for r in await db.fetch(query, guild_id)}

        return await self._call("reading the server's personas", read)

    async def persona(self, guild_id: int, key: str) -> str | None:
        check_id("guild_id", guild_id)

        async def read(db: Db) -> str | None:
            query = "SELECT toml FROM guild_personas WHERE guild_id = $1 AND key = $2"
            toml: str | None = await db.fetchval(query, guild_id, key)
            return toml

        return await self._call("reading a server persona", read)

    async def put_persona(self, guild_id: int, key: str, toml: str, *, max_count: int) -> bool:
        check_id("guild_id", guild_id)
        check_persona(key, toml)

        async def write(db: Db) -> bool:
            # One server's persona writes queue on a per-guild advisory lock, so two creates cannot pass the count.
            await db.execute("SELECT pg_advisory_xact_lock($1, $2)", PERSONA_LOCK_CLASS, guild_id % 2**31)
            query = "SELECT 1 FROM guild_personas WHERE guild_id = $1 AND key = $2"
            exists = await db.fetchval(query, guild_id, key) is not None
            if not exists:
                count = await db.fetchval("SELECT COUNT(*) FROM guild_personas WHERE guild_id = $1", guild_id)
                if count >= max_count:
                    raise StoreError(f"this server already has {count} personas, the most it may keep")
            await db.execute(
                "INSERT INTO guild_personas (guild_id, key, toml) VALUES ($1, $2, $3) "
                "ON CONFLICT (guild_id, key) DO UPDATE SET toml = excluded.toml",
                guild_id,
                key,
                toml,
            )
            return not exists

        return await self._write("saving a server persona", write)

    async def delete_persona(self, guild_id: int, key: str) -> bool:
        check_id("guild_id", guild_id)
        scope, args = "guild_id = $1 AND key = $2", (guild_id, key)
        return await self._delete("deleting a server persona", ("guild_personas",), scope, args) > 0

    async def export_guild(self, guild_id: int) -> dict[str, Any]:
        async def read(db: Db) -> dict[str, Any]:
            rows = await _rows(db, guild_id)
            return export_document(guild_id, await _schema_version(db), rows.settings.get(guild_id), rows)

        async with self._connection("exporting") as db, db.transaction(isolation="repeatable_read", readonly=True):
            return await read(db)

    async def _delete(self, what: str, tables: tuple[str, ...], scope: str, args: tuple[object, ...]) -> int:
        async def write(db: Db) -> int:
            removed = 0
            for table in tables:
                status = await db.execute(f"DELETE FROM {table} WHERE {scope}", *args)
                removed += int(status.rsplit(" ", 1)[-1])
            return removed

        return await self._write(what, write)

    async def delete_guild(self, guild_id: int, *, forget_choices: bool = False) -> int:
        kept = ("guild_settings", "usage", "user_usage", "guild_personas")
        tables = (*kept, "user_privacy") if forget_choices else kept
        removed = await self._delete("deleting a server's data", tables, "guild_id = $1", (guild_id,))
        _log.info("deleted stored data of guild %s (%d rows)", guild_id, removed)
        return removed

    async def delete_user(self, user_id: int, guild_id: int | None = None, *, forget_choices: bool = False) -> int:
        scope = "user_id = $1" if guild_id is None else "user_id = $1 AND guild_id = $2"
        args: tuple[int, ...] = (user_id,) if guild_id is None else (user_id, guild_id)
        tables = ("user_usage", "user_privacy") if forget_choices else ("user_usage",)
        removed = await self._delete("deleting a member's data", tables, scope, args)
        _log.info("deleted stored data of user %s (%d rows)", user_id, removed)
        return removed

    async def rows(self, guild_id: int | None = None) -> StoreRows:
        async with self._connection("reading every row") as db, db.transaction(isolation="repeatable_read"):
            return await _rows(db, guild_id)

    async def put_rows(self, rows: StoreRows) -> None:
        async def write(db: Db) -> None:
            for gid, settings in rows.settings.items():
                await _put_settings(db, gid, settings)
            await db.executemany(
                "INSERT INTO usage (guild_id, day, seconds, input_tokens, output_tokens, cost_usd) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (guild_id, day) DO UPDATE SET "
                "seconds = excluded.seconds, input_tokens = excluded.input_tokens, "
                "output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd",
                [(g, d, u.seconds, u.input_tokens, u.output_tokens, u.cost_usd) for (g, d), u in rows.usage.items()],
            )
            await db.executemany(
                "INSERT INTO user_usage (guild_id, day, user_id, seconds) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (guild_id, day, user_id) DO UPDATE SET seconds = excluded.seconds",
                [(g, d, u, s) for (g, d, u), s in rows.user_usage.items()],
            )
            for (gid, uid), choice in rows.privacy.items():
                await _put_privacy(db, gid, uid, choice)
            await db.executemany(
                "INSERT INTO guild_personas (guild_id, key, toml) VALUES ($1, $2, $3) "
                "ON CONFLICT (guild_id, key) DO UPDATE SET toml = excluded.toml",
                [(g, k, t) for (g, k), t in rows.personas.items()],
            )

        await self._write("writing rows", write)

    async def close(self) -> None:
        """Close the pool's connections (waiting at most the call timeout for calls in flight). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            async with asyncio.timeout(self._call_timeout_s):
                await self._pool.close()
        except (TimeoutError, *_ERRORS) as error:
            _log.warning("settings store: closing the database pool did not finish cleanly: %s", error or "timed out")
            self._pool.terminate()
