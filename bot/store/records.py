"""What the store holds, as values: guild settings, usage counters, privacy choices, talk time, and their checks.

Pure logic over the standard library (no asyncio): every backend (:mod:`bot.store.sqlite`,
:mod:`bot.store.postgres`) returns these records and refuses bad values with the same :class:`StoreError`, checked
here before any I/O. Stored data is limited to settings, usage counters (per guild and per user and day),
per-user privacy choices, keyed by Discord ids, and the personas a server's managers wrote (their TOML text): no
audio, no transcripts, no names of members, nothing anyone said.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

#: The schema version both backends migrate to (each has its own migrations, one per version, same tables).
SCHEMA_VERSION = 5

ListeningMode = Literal["always", "name", "push-to-talk"]
LISTENING_MODES: tuple[ListeningMode, ...] = ("always", "name", "push-to-talk")
#: How the Realtime server ends a turn: after a silence (``silence_ms``, ``vad_threshold``) or on meaning.
TurnDetection = Literal["server_vad", "semantic_vad"]
TURN_DETECTIONS: tuple[TurnDetection, ...] = ("server_vad", "semantic_vad")
#: How soon ``semantic_vad`` ends a turn (``auto`` = the server's default, medium).
Eagerness = Literal["low", "medium", "high", "auto"]
EAGERNESS_LEVELS: tuple[Eagerness, ...] = ("low", "medium", "high", "auto")


class StoreError(Exception):
    """The settings store cannot be opened or a value is invalid; the message says which, without secrets."""


class StoreUnavailable(StoreError):
    """The store did not answer in time or failed (locked, unreachable, full): the data is fine, try again later."""


class StoreOutcomeUnknown(StoreUnavailable):
    """A call outlasted its bound while it was already running, so it may still land. ``outcome`` settles when the
    call ends (raising if it failed): a caller that would write the same figures again waits for it instead, so
    nothing is counted twice."""

    def __init__(self, message: str, outcome: Awaitable[object]) -> None:
        super().__init__(message)
        self.outcome = outcome


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


def check_day(day: str) -> str:
    """``day`` if it is a ``YYYY-MM-DD`` date; :class:`StoreError` otherwise."""
    if not isinstance(day, str) or not _DAY.fullmatch(day):
        raise StoreError(f"a day must be written YYYY-MM-DD, not {day!r}")
    return day


def check_id(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StoreError(f"{name} must be a Discord id, not {value!r}")
    return value


#: A server persona's key (what commands call it), as :mod:`bot.persona.server` makes them.
_PERSONA_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
#: Far above a valid server persona's TOML (16 KiB): the store refuses anything larger before any I/O.
MAX_PERSONA_TOML_CHARS = 32 * 1024


def check_persona(key: str, toml: str) -> tuple[str, str]:
    """A server persona's key and TOML text checked for storing; :class:`StoreError` otherwise. (Whether the TOML
    is a valid persona is the persona room's check, made before it is stored.)"""
    if not isinstance(key, str) or not _PERSONA_KEY.fullmatch(key):
        raise StoreError(f"{key!r} is not a persona key")
    if not isinstance(toml, str) or len(toml) > MAX_PERSONA_TOML_CHARS:
        raise StoreError("a server persona must be a text of at most 32 KiB")
    return key, toml


def check_seconds(seconds: float) -> float:
    """``seconds`` of talk time as a float; :class:`StoreError` unless a finite, non-negative number."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise StoreError(f"talk time must be a number of seconds, not {seconds!r}")
    if seconds < 0:
        raise StoreError("talk time cannot be negative")
    return float(seconds)


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise StoreError(f"the number of top talkers must be 1 or more, not {limit!r}")
    return limit


def check_flag(name: str, value: bool | None) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise StoreError(f"{name} must be on or off")
    return value


def merged_settings(current: GuildSettings, changes: dict[str, Any]) -> GuildSettings:
    """``current`` with ``changes`` validated and applied; :class:`StoreError` on any bad value (nothing applied)."""
    checked = {name: validate_setting(name, value) for name, value in changes.items()}
    return dataclasses.replace(current, **checked)


def merged_privacy(current: Privacy, no_transcript: bool | None, no_listen: bool | None) -> Privacy:
    """``current`` with the given choices changed (``None`` keeps one as it is)."""
    return Privacy(
        no_transcript=current.no_transcript if no_transcript is None else no_transcript,
        no_listen=current.no_listen if no_listen is None else no_listen,
    )


#: Rows of a whole store, table by table, for copying one store into another (``voicebot store migrate``).
TABLES = ("guild_settings", "usage", "user_usage", "user_privacy", "guild_personas")


@dataclass(frozen=True, slots=True)
class StoreRows:
    """Every row of a store: settings per guild, usage per guild and day, talk time, privacy choices, personas."""

    settings: dict[int, GuildSettings] = field(default_factory=dict)
    #: ``(guild_id, day) -> Usage``
    usage: dict[tuple[int, str], Usage] = field(default_factory=dict)
    #: ``(guild_id, day, user_id) -> seconds``
    user_usage: dict[tuple[int, str, int], float] = field(default_factory=dict)
    #: ``(guild_id, user_id) -> Privacy`` (only choices that differ from the defaults)
    privacy: dict[tuple[int, int], Privacy] = field(default_factory=dict)
    #: ``(guild_id, key) -> TOML`` of the personas a server's managers made
    personas: dict[tuple[int, str], str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Rows per table, by table name."""
        sizes = (len(self.settings), len(self.usage), len(self.user_usage), len(self.privacy), len(self.personas))
        return dict(zip(TABLES, sizes, strict=True))


def export_document(
    guild_id: int,
    schema_version: int,
    settings: GuildSettings | None,
    rows: StoreRows,
) -> dict[str, Any]:
    """The JSON-ready export of one guild (``/voice export``), the same from every backend."""
    return {
        "guild_id": guild_id,
        "schema_version": schema_version,
        "settings": None if settings is None else dataclasses.asdict(settings),
        "usage": [
            {
                "day": day,
                "seconds": u.seconds,
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "cost_usd": u.cost_usd,
            }
            for (_, day), u in sorted(rows.usage.items())
        ],
        "user_usage": [
            {"day": day, "user_id": user_id, "seconds": seconds}
            for (_, day, user_id), seconds in sorted(rows.user_usage.items())
        ],
        "privacy": [
            {"user_id": user_id, "no_transcript": p.no_transcript, "no_listen": p.no_listen}
            for (_, user_id), p in sorted(rows.privacy.items())
        ],
        "personas": [{"key": key, "toml": toml} for (_, key), toml in sorted(rows.personas.items())],
    }
