"""Per-guild settings and usage counters in one SQLite file, with a versioned schema.

Settings are declared once (:class:`GuildSettings` and its defaults) and read/written per guild through
:class:`SettingsStore`. Stored data is limited to settings and usage counters: no audio, no transcripts, no
user names. :meth:`SettingsStore.delete_guild` removes everything stored for a guild.

The store is synchronous; each call is one small transaction on a local file (well under a millisecond), so the
asyncio layers may call it directly. It is safe to use from one thread at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

_log = logging.getLogger(__name__)

DB_FILENAME = "voicebot.sqlite3"
ListeningMode = Literal["always", "name", "push-to-talk"]
LISTENING_MODES: tuple[ListeningMode, ...] = ("always", "name", "push-to-talk")


class StoreError(Exception):
    """The settings store cannot be opened or a value is invalid."""


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """One guild's settings; ``None`` means "use the bot's configured default"."""

    persona: str | None = None
    voice: str | None = None
    interruptions: bool = True
    vad_threshold: float = 0.5
    silence_ms: int = 500
    transcripts: bool = False
    transcript_channel_id: int | None = None
    daily_budget_min: float | None = None
    mode: ListeningMode = "always"


SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(GuildSettings))


def validate_setting(name: str, value: Any) -> Any:
    """``value`` checked (and normalised) for setting ``name``; raises :class:`StoreError` with a clear reason."""
    if name not in SETTING_NAMES:
        raise StoreError(f"unknown setting {name!r}")
    if value is None:
        if name in {"persona", "voice", "transcript_channel_id", "daily_budget_min"}:
            return None
        raise StoreError(f"{name} cannot be empty")
    if name in {"interruptions", "transcripts"}:
        if not isinstance(value, bool):
            raise StoreError(f"{name} must be on or off")
        return value
    if name == "vad_threshold":
        if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise StoreError("the VAD threshold must be between 0.0 and 1.0")
        return float(value)
    if name == "silence_ms":
        if not isinstance(value, int) or not 100 <= value <= 3000:
            raise StoreError("the silence duration must be between 100 and 3000 ms")
        return value
    if name == "daily_budget_min":
        if not isinstance(value, int | float) or value < 0:
            raise StoreError("the daily budget must be zero or more minutes")
        return float(value)
    if name == "mode":
        if value not in LISTENING_MODES:
            raise StoreError(f"the listening mode must be one of {', '.join(LISTENING_MODES)}")
        return value
    if name == "transcript_channel_id":
        if not isinstance(value, int) or value <= 0:
            raise StoreError("the transcript channel must be a channel id")
        return value
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise StoreError(f"{name} must be a short text")
    return value.strip()


@dataclass(frozen=True, slots=True)
class Usage:
    """Usage counters of one guild over a period."""

    seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def minutes(self) -> float:
        return self.seconds / 60.0


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


#: Migration ``n`` (1-based) brings the schema from version n-1 to n. Append; never edit a released one.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migration_1, _migration_2)
SCHEMA_VERSION = len(MIGRATIONS)


class SettingsStore:
    """Per-guild settings and usage in ``DATA_DIR/voicebot.sqlite3``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open the settings store {str(path)!r}: {error}") from error
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=2000")
            self._migrate()
        except (sqlite3.Error, StoreError) as error:
            self._db.close()
            if isinstance(error, StoreError):
                raise
            raise StoreError(f"cannot open the settings store {str(path)!r}: {error}") from error

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> SettingsStore:
        return cls(data_dir / DB_FILENAME)

    @property
    def schema_version(self) -> int:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        return version

    def _migrate(self) -> None:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise StoreError(f"the settings store has schema version {current}, newer than this bot's {SCHEMA_VERSION}")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self._transaction():
                MIGRATIONS[version - 1](self._db)
                self._db.execute(f"PRAGMA user_version = {version}")
            _log.info("settings store migrated to schema version %d", version)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back when it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def get(self, guild_id: int) -> GuildSettings:
        """The guild's settings (the defaults when nothing is stored)."""
        self._db.row_factory = sqlite3.Row
        try:
            row = self._db.execute("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,)).fetchone()
        finally:
            self._db.row_factory = None
        if row is None:
            return GuildSettings()
        values: dict[str, Any] = {name: row[name] for name in SETTING_NAMES}
        values["interruptions"] = bool(values["interruptions"])
        values["transcripts"] = bool(values["transcripts"])
        return GuildSettings(**values)

    def update(self, guild_id: int, changes: Mapping[str, Any]) -> GuildSettings:
        """Validate and save ``changes``; returns the new settings. Raises :class:`StoreError` on a bad value."""
        checked = {name: validate_setting(name, value) for name, value in changes.items()}
        merged = dataclasses.replace(self.get(guild_id), **checked)
        row = dataclasses.asdict(merged)
        columns = sorted(row)
        placeholders = ", ".join("?" for _ in columns)
        assignments = ", ".join(f"{c} = excluded.{c}" for c in columns)
        with self._transaction():
            self._db.execute(
                f"INSERT INTO guild_settings (guild_id, {', '.join(columns)}) VALUES (?, {placeholders}) "
                f"ON CONFLICT (guild_id) DO UPDATE SET {assignments}",
                (guild_id, *(row[c] for c in columns)),
            )
        return merged

    def add_usage(
        self,
        guild_id: int,
        day: str,
        *,
        seconds: float = 0.0,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        """Add to the guild's counters for ``day`` (``YYYY-MM-DD``, UTC)."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO usage (guild_id, day, seconds, input_tokens, output_tokens, cost_usd) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, day) DO UPDATE SET "
                "seconds = seconds + excluded.seconds, input_tokens = input_tokens + excluded.input_tokens, "
                "output_tokens = output_tokens + excluded.output_tokens, cost_usd = cost_usd + excluded.cost_usd",
                (guild_id, day, seconds, input_tokens, output_tokens, cost_usd),
            )

    def usage(self, guild_id: int, first_day: str, last_day: str | None = None) -> Usage:
        """The guild's usage summed over ``first_day`` .. ``last_day`` (inclusive; one day when omitted)."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(seconds), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
            "COALESCE(SUM(cost_usd), 0) FROM usage WHERE guild_id = ? AND day BETWEEN ? AND ?",
            (guild_id, first_day, last_day or first_day),
        ).fetchone()
        return Usage(seconds=float(row[0]), input_tokens=int(row[1]), output_tokens=int(row[2]), cost_usd=float(row[3]))

    def delete_guild(self, guild_id: int) -> int:
        """Delete everything stored for the guild; returns the number of rows removed."""
        with self._transaction():
            removed = self._db.execute("DELETE FROM guild_settings WHERE guild_id = ?", (guild_id,)).rowcount
            removed += self._db.execute("DELETE FROM usage WHERE guild_id = ?", (guild_id,)).rowcount
        _log.info("deleted stored data of guild %s (%d rows)", guild_id, removed)
        return removed

    def close(self) -> None:
        """Flush and close the file (checkpoints the write-ahead log). Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()
