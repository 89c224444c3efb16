"""Typed server events of both dialects (GA and beta) and the one table from wire type to parser.

:func:`parse_server_event` turns one decoded JSON object into a typed event, ``None`` for a type the bot does not
use, or raises :class:`MalformedEvent` when a field it needs is missing or has the wrong type.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class MalformedEvent(ValueError):
    """A server event misses a field the bot needs, or a field has the wrong type."""


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    session: Mapping[str, Any] = field(repr=False)
    created: bool  # True for session.created


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    item_id: str
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class AudioCommitted:
    item_id: str
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True)
class InputTranscript:
    item_id: str
    transcript: str
    usage: Mapping[str, Any] | None = field(default=None, repr=False)  # billed by the transcription model


@dataclass(frozen=True, slots=True)
class InputTranscriptFailed:
    item_id: str
    message: str


@dataclass(frozen=True, slots=True)
class ItemAdded:
    item_id: str
    item_type: str
    role: str | None


@dataclass(frozen=True, slots=True)
class ItemTruncated:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    response_id: str
    #: The ``metadata`` the response was created with (the request's, echoed by the server); empty if none.
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutputItemAdded:
    response_id: str
    item_id: str
    item_type: str


@dataclass(frozen=True, slots=True)
class AudioDelta:
    response_id: str
    item_id: str
    content_index: int
    pcm16: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AudioDone:
    response_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class TranscriptDelta:
    """Assistant speech transcript (or text output) growing."""

    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class TranscriptDone:
    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class FunctionCallArgumentsDone:
    response_id: str
    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str
    status_details: Mapping[str, Any] | None
    usage: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    error_type: str
    code: str | None
    message: str
    event_id: str | None


ServerEvent = (
    SessionUpdated
    | SpeechStarted
    | SpeechStopped
    | AudioCommitted
    | InputTranscript
    | InputTranscriptFailed
    | ItemAdded
    | ItemTruncated
    | ResponseCreated
    | OutputItemAdded
    | AudioDelta
    | AudioDone
    | TranscriptDelta
    | TranscriptDone
    | FunctionCallArgumentsDone
    | ResponseDone
    | ErrorEvent
)


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise MalformedEvent(f"field {key!r} missing or not a string")
    return value


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _int(obj: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedEvent(f"field {key!r} missing or not an integer")
    return value


def _obj(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"field {key!r} missing or not an object")
    return value


def _opt_obj(obj: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else None


def _metadata(response: Mapping[str, Any]) -> dict[str, str]:
    """A response's ``metadata``: its string entries (a server may send none, ``null``, or anything)."""
    metadata = _opt_obj(response, "metadata") or {}
    return {str(key): value for key, value in metadata.items() if isinstance(value, str)}


def _audio(e: Mapping[str, Any]) -> AudioDelta:
    try:
        pcm16 = base64.b64decode(_str(e, "delta"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEvent("field 'delta' is not base64") from exc
    return AudioDelta(_str(e, "response_id"), _str(e, "item_id"), _int(e, "content_index", 0), pcm16)


def _item_added(e: Mapping[str, Any]) -> ItemAdded:
    item = _obj(e, "item")
    return ItemAdded(_str(item, "id"), _str(item, "type"), _opt_str(item, "role"))


def _response_done(e: Mapping[str, Any]) -> ResponseDone:
    response = _obj(e, "response")
    return ResponseDone(
        _str(response, "id"),
        _str(response, "status"),
        _opt_obj(response, "status_details"),
        _opt_obj(response, "usage"),
    )


def _error(e: Mapping[str, Any]) -> ErrorEvent:
    error = _obj(e, "error")
    return ErrorEvent(
        _opt_str(error, "type") or "error",
        _opt_str(error, "code"),
        _opt_str(error, "message") or "(no message)",
        _opt_str(error, "event_id"),
    )


_Parser = Callable[[Mapping[str, Any]], ServerEvent]

_GA_AND_BETA: dict[str, _Parser] = {
    "session.created": lambda e: SessionUpdated(_obj(e, "session"), created=True),
    "session.updated": lambda e: SessionUpdated(_obj(e, "session"), created=False),
    "input_audio_buffer.speech_started": lambda e: SpeechStarted(_str(e, "item_id"), _int(e, "audio_start_ms")),
    "input_audio_buffer.speech_stopped": lambda e: SpeechStopped(_str(e, "item_id"), _int(e, "audio_end_ms")),
    "input_audio_buffer.committed": lambda e: AudioCommitted(_str(e, "item_id"), _opt_str(e, "previous_item_id")),
    "conversation.item.input_audio_transcription.completed": lambda e: InputTranscript(
        _str(e, "item_id"), _str(e, "transcript"), _opt_obj(e, "usage")
    ),
    "conversation.item.input_audio_transcription.failed": lambda e: InputTranscriptFailed(
        _str(e, "item_id"), _opt_str(_opt_obj(e, "error") or {}, "message") or "transcription failed"
    ),
    "conversation.item.added": _item_added,
    "conversation.item.created": _item_added,
    "conversation.item.truncated": lambda e: ItemTruncated(_str(e, "item_id"), _int(e, "audio_end_ms")),
    "response.created": lambda e: ResponseCreated(_str(_obj(e, "response"), "id"), _metadata(_obj(e, "response"))),
    "response.output_item.added": lambda e: OutputItemAdded(
        _str(e, "response_id"), _str(_obj(e, "item"), "id"), _str(_obj(e, "item"), "type")
    ),
    "response.function_call_arguments.done": lambda e: FunctionCallArgumentsDone(
        _str(e, "response_id"), _str(e, "item_id"), _str(e, "call_id"), _str(e, "name"), _str(e, "arguments")
    ),
    "response.done": _response_done,
    "error": _error,
}

#: The same events under their GA and beta names (GA name first).
_RENAMED: dict[tuple[str, str], _Parser] = {
    ("response.output_audio.delta", "response.audio.delta"): _audio,
    ("response.output_audio.done", "response.audio.done"): lambda e: AudioDone(
        _str(e, "response_id"), _str(e, "item_id")
    ),
    ("response.output_audio_transcript.delta", "response.audio_transcript.delta"): lambda e: TranscriptDelta(
        _str(e, "item_id"), _str(e, "delta")
    ),
    ("response.output_audio_transcript.done", "response.audio_transcript.done"): lambda e: TranscriptDone(
        _str(e, "item_id"), _str(e, "transcript")
    ),
    ("response.output_text.delta", "response.text.delta"): lambda e: TranscriptDelta(
        _str(e, "item_id"), _str(e, "delta")
    ),
    ("response.output_text.done", "response.text.done"): lambda e: TranscriptDone(_str(e, "item_id"), _str(e, "text")),
}

#: Wire type -> parser, for both dialects (a server of either dialect is understood).
PARSERS: dict[str, _Parser] = {
    **_GA_AND_BETA,
    **{name: parser for names, parser in _RENAMED.items() for name in names},
}

#: GA server event name -> beta name, for servers (and tests) that speak beta.
GA_TO_BETA_NAMES: dict[str, str] = {ga: beta for ga, beta in _RENAMED} | {
    "conversation.item.added": "conversation.item.created"
}


def parse_server_event(event: Mapping[str, Any]) -> ServerEvent | None:
    """The typed event for one decoded server event; ``None`` for a type the bot ignores.

    Raises:
        MalformedEvent: the type is known but a needed field is missing or wrong.
    """
    kind = event.get("type")
    if not isinstance(kind, str):
        raise MalformedEvent("event has no 'type'")
    parser = PARSERS.get(kind)
    return None if parser is None else parser(event)
