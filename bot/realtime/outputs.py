"""What a Realtime session tells the application: typed, dialect-free events.

A Discord cog or the ``simulate`` command reads these from :meth:`bot.realtime.driver.RealtimeSession.events`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.realtime.usage import Usage


@dataclass(frozen=True, slots=True)
class SessionReady:
    """The server confirmed the session configuration (after the first connect and after each reconnect)."""

    reconnected: bool


@dataclass(frozen=True, slots=True)
class AssistantAudio:
    """A chunk of the answer: 24 kHz mono pcm16 belonging to output item ``item_id``."""

    item_id: str
    pcm16: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AssistantTranscript:
    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class UserTranscript:
    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class UserSpeechStarted:
    item_id: str
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class UserSpeechStopped:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class UserTurnCommitted:
    """The server committed the input audio as user item ``item_id`` (placed after ``previous_item_id``)."""

    item_id: str
    previous_item_id: str | None


@dataclass(frozen=True, slots=True)
class ToolCallRequested:
    """The model asked for a tool; the driver runs it and hands the output back to the protocol."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    call_id: str
    name: str
    arguments: str
    output: str
    ok: bool


@dataclass(frozen=True, slots=True)
class ResponseFinished:
    response_id: str
    status: str  # completed | cancelled | incomplete | failed
    #: Why it ended when not completed (from ``status_details``; redacted and truncated), else ``None``.
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerFailed:
    """An answer the user is owed will not come (the server never started it, it stalled, or it failed); the
    session goes on listening. ``reason`` is safe to show (redacted, truncated)."""

    reason: str


@dataclass(frozen=True, slots=True)
class SettingsRejected:
    """The server refused a ``session.update``; the previous settings stay. ``initial``: the very first one, so
    the session cannot start. ``message`` is the server's reason, redacted and truncated."""

    code: str | None
    message: str
    initial: bool


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Tokens of one response or transcription (``part``) and the session total so far, with estimated costs."""

    part: Usage
    total: Usage
    #: Estimated cost of the session so far; ``None`` ("cost unknown") when a model used has no price table.
    total_cost_usd: float | None
    part_cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class ErrorReported:
    """An error event from the server (``fatal``: reconnecting cannot help) or from the connection."""

    code: str | None
    message: str
    fatal: bool


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The connection dropped (or the session is being renewed); the next attempt starts in ``delay_s``."""

    attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The session is over: closed by the application, or stopped by a fatal error (``error`` set)."""

    error: str | None


Output = (
    SessionReady
    | AssistantAudio
    | AssistantTranscript
    | UserTranscript
    | UserSpeechStarted
    | UserSpeechStopped
    | UserTurnCommitted
    | ToolCallRequested
    | ToolCallFinished
    | ResponseFinished
    | AnswerFailed
    | SettingsRejected
    | UsageReport
    | ErrorReported
    | Reconnecting
    | SessionEnded
)
