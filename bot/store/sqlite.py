"""Per-guild settings and usage counters in one SQLite file, with a versioned schema.

Settings are declared once (:class:`GuildSettings` and its defaults) and read/written per guild through
:class:`SettingsStore`. Stored data is limited to settings, usage counters (per guild and per user and day) and
per-user privacy choices, keyed by Discord ids: no audio, no transcripts, no names, no text.
:meth:`SettingsStore.export_guild` returns everything stored for a guild, :meth:`SettingsStore.delete_guild` removes
it but members' opt-outs, and :meth:`SettingsStore.delete_user` removes what is stored about one user.

The store is synchronous; each call is one small transaction on a local file (well under a millisecond), so the
asyncio layers may call it directly. It is safe to use from one thread at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

_log = logging.getLogger(__name__)

DB_FILENAME = "voicebot.sqlite3"
ListeningMode = Literal["always", "name", "push-to-talk"]
LISTENING_MODES: tuple[ListeningMode, ...] = ("always", "name", "push-to-talk")
#: How the Realtime server ends a turn: after a silence (``silence_ms``, ``vad_threshold``) or on meaning.
TurnDetection = Literal["server_vad", "semantic_vad"]
TURN_DETECTIONS: tuple[TurnDetection, ...] = ("server_vad", "semantic_vad")
#: How soon ``semantic_vad`` ends a turn (``auto`` = the server's default, medium).
Eagerness = Literal["low", "medium", "high", "auto"]
EAGERNESS_LEVELS: tuple[Eagerness, ...] = ("low", "medium", "high", "auto")


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
    turn_detection: TurnDetection = "server_vad"
    eagerness: Eagerness = "auto"


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
    if name == "turn_detection":
        if value not in TURN_DETECTIONS:
            raise StoreError(f"the turn detection must be one of {', '.join(TURN_DETECTIONS)}")
        return value
    if name == "eagerness":
        if value not in EAGERNESS_LEVELS:
            raise StoreError(f"the eagerness must be one of {', '.join(EAGERNESS_LEVELS)}")
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


@dataclass(frozen=True, slots=True)
class Privacy:
    """One user's privacy choices in one guild (the defaults when nothing is stored).

    Attributes:
        no_transcript: Their turns appear in transcripts as "(someone)".
        no_listen: Their audio is not sent to the model at all.
    """

    no_transcript: bool = False
    no_listen: bool = False


class TalkTime(NamedTuple):
    """How long one user talked (seconds of their speech sent to the model); a pair, so ``dict(rows)`` works."""

    user_id: int
    seconds: float

    @property
    def minutes(self) -> float:
        return self.seconds / 60.0


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _check_day(day: str) -> str:
    """``day`` if it is a ``YYYY-MM-DD`` date; :class:`StoreError` otherwise."""
    if not isinstance(day, str) or not _DAY.fullmatch(day):
        raise StoreError(f"a day must be written YYYY-MM-DD, not {day!r}")
    return day


def _check_id(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StoreError(f"{name} must be a Discord id, not {value!r}")
    return value


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


#: Migration ``n`` (1-based) brings the schema from version n-1 to n. Append; never edit a released one.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migration_1, _migration_2, _migration_3, _migration_4)
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

    def usage_since(self, guild_id: int, since_day: str) -> Usage:
        """The guild's usage from ``since_day`` (inclusive, ``YYYY-MM-DD``) on: e.g. this month so far."""
        _check_day(since_day)
        return self.usage(guild_id, since_day, "9999-12-31")

    # -- per-user talk time -------------------------------------------------------------------------------------

    def add_user_usage(self, guild_id: int, day: str, user_id: int, seconds: float) -> None:
        """Add ``seconds`` of ``user_id``'s speech on ``day`` (``YYYY-MM-DD``, UTC) to the guild's counters."""
        _check_day(day)
        _check_id("user_id", user_id)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
            raise StoreError(f"talk time must be a number of seconds, not {seconds!r}")
        if seconds < 0:
            raise StoreError("talk time cannot be negative")
        with self._transaction():
            self._db.execute(
                "INSERT INTO user_usage (guild_id, day, user_id, seconds) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (guild_id, day, user_id) DO UPDATE SET seconds = seconds + excluded.seconds",
                (guild_id, day, user_id, float(seconds)),
            )

    def top_talkers(self, guild_id: int, since_day: str, limit: int = 5) -> list[TalkTime]:
        """The guild's ``limit`` users who talked longest from ``since_day`` on, longest first (ties by id)."""
        _check_day(since_day)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise StoreError(f"the number of top talkers must be 1 or more, not {limit!r}")
        rows = self._db.execute(
            "SELECT user_id, SUM(seconds) AS total FROM user_usage WHERE guild_id = ? AND day >= ? "
            "GROUP BY user_id HAVING total > 0 ORDER BY total DESC, user_id LIMIT ?",
            (guild_id, since_day, limit),
        ).fetchall()
        return [TalkTime(user_id=int(user_id), seconds=float(total)) for user_id, total in rows]

    # -- per-user privacy ---------------------------------------------------------------------------------------

    def privacy(self, guild_id: int, user_id: int) -> Privacy:
        """The user's privacy choices in the guild (the defaults when nothing is stored)."""
        row = self._db.execute(
            "SELECT no_transcript, no_listen FROM user_privacy WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        ).fetchone()
        return Privacy() if row is None else Privacy(no_transcript=bool(row[0]), no_listen=bool(row[1]))

    def set_privacy(
        self, guild_id: int, user_id: int, *, no_transcript: bool | None = None, no_listen: bool | None = None
    ) -> Privacy:
        """Change the given choices (``None`` keeps one as it is); returns the new choices.

        A user back on the defaults has no row at all: nothing is stored about people who did not opt out.
        """
        _check_id("user_id", user_id)
        for name, value in (("no_transcript", no_transcript), ("no_listen", no_listen)):
            if value is not None and not isinstance(value, bool):
                raise StoreError(f"{name} must be on or off")
        with self._transaction():
            current = self.privacy(guild_id, user_id)
            new = Privacy(
                no_transcript=current.no_transcript if no_transcript is None else no_transcript,
                no_listen=current.no_listen if no_listen is None else no_listen,
            )
            if new == Privacy():
                self._db.execute("DELETE FROM user_privacy WHERE guild_id = ? AND user_id = ?", (guild_id, user_id))
            else:
                self._db.execute(
                    "INSERT INTO user_privacy (guild_id, user_id, no_transcript, no_listen) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (guild_id, user_id) DO UPDATE SET no_transcript = excluded.no_transcript, "
                    "no_listen = excluded.no_listen",
                    (guild_id, user_id, int(new.no_transcript), int(new.no_listen)),
                )
        return new

    def opted_out(self, guild_id: int) -> dict[int, Privacy]:
        """Every user of the guild with at least one privacy choice on, by user id."""
        rows = self._db.execute(
            "SELECT user_id, no_transcript, no_listen FROM user_privacy WHERE guild_id = ? "
            "AND (no_transcript != 0 OR no_listen != 0) ORDER BY user_id",
            (guild_id,),
        ).fetchall()
        return {int(user_id): Privacy(no_transcript=bool(nt), no_listen=bool(nl)) for user_id, nt, nl in rows}

    # -- export and deletion ------------------------------------------------------------------------------------

    def export_guild(self, guild_id: int) -> dict[str, Any]:
        """Everything stored for the guild, JSON-ready (ids, numbers, settings; never names or text of speech)."""
        settings_row = self._db.execute("SELECT 1 FROM guild_settings WHERE guild_id = ?", (guild_id,)).fetchone()
        usage = self._db.execute(
            "SELECT day, seconds, input_tokens, output_tokens, cost_usd FROM usage WHERE guild_id = ? ORDER BY day",
            (guild_id,),
        ).fetchall()
        talk = self._db.execute(
            "SELECT day, user_id, seconds FROM user_usage WHERE guild_id = ? ORDER BY day, user_id", (guild_id,)
        ).fetchall()
        privacy = self._db.execute(
            "SELECT user_id, no_transcript, no_listen FROM user_privacy WHERE guild_id = ? ORDER BY user_id",
            (guild_id,),
        ).fetchall()
        return {
            "guild_id": guild_id,
            "schema_version": self.schema_version,
            "settings": None if settings_row is None else dataclasses.asdict(self.get(guild_id)),
            "usage": [
                {"day": d, "seconds": s, "input_tokens": i, "output_tokens": o, "cost_usd": c}
                for d, s, i, o, c in usage
            ],
            "user_usage": [{"day": d, "user_id": u, "seconds": s} for d, u, s in talk],
            "privacy": [{"user_id": u, "no_transcript": bool(t), "no_listen": bool(n)} for u, t, n in privacy],
        }

    def delete_guild(self, guild_id: int, *, forget_choices: bool = False) -> int:
        """Delete what is stored for the guild (settings, usage, talk time); returns the number of rows removed.

        Members' privacy choices stay unless ``forget_choices``: an opt-out protects its member, and deleting it
        would start transcribing them and sending their audio again (as with :meth:`delete_user`).
        """
        tables = ("guild_settings", "usage", "user_usage")
        with self._transaction():
            removed = 0
            for table in (*tables, "user_privacy") if forget_choices else tables:
                removed += self._db.execute(f"DELETE FROM {table} WHERE guild_id = ?", (guild_id,)).rowcount
        _log.info("deleted stored data of guild %s (%d rows)", guild_id, removed)
        return removed

    def delete_user(self, user_id: int, guild_id: int | None = None, *, forget_choices: bool = False) -> int:
        """Delete what is stored about one user (in one guild, or in all); returns the number of rows removed.

        Their talk time goes. Their privacy choices stay unless ``forget_choices``: an opt-out protects the user,
        and deleting it would start sending their audio again.
        """
        scope = "user_id = ?" if guild_id is None else "user_id = ? AND guild_id = ?"
        args: tuple[int, ...] = (user_id,) if guild_id is None else (user_id, guild_id)
        tables = ("user_usage", "user_privacy") if forget_choices else ("user_usage",)
        with self._transaction():
            removed = 0
            for table in tables:
                removed += self._db.execute(f"DELETE FROM {table} WHERE {scope}", args).rowcount
        _log.info("deleted stored data of user %s (%d rows)", user_id, removed)
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
