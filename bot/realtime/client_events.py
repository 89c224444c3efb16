"""Client events in both dialects. Only ``session.update`` and assistant text items differ between GA and beta.

Every builder returns a plain JSON-ready ``dict``; the tests validate each one against the official ``openai``
package's typed models for its dialect.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.config import DEFAULT_TRANSCRIPTION_MODEL

Dialect = Literal["ga", "beta"]
Role = Literal["user", "assistant"]

#: The largest ``input_audio_buffer.append`` the API accepts (15 MiB of base64); we send far smaller chunks.
MAX_APPEND_PCM16_BYTES = 15 * 1024 * 1024 * 3 // 4


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Everything ``session.update`` carries; replayed after every reconnect."""

    instructions: str
    voice: str = "marin"
    tools: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    #: ``server_vad`` ends a turn after ``silence_duration_ms`` of quiet; ``semantic_vad`` when the words sound
    #: finished, sooner or later by ``eagerness``.
    turn_detection: Literal["server_vad", "semantic_vad"] = "server_vad"
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    vad_threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True
    transcription_model: str = DEFAULT_TRANSCRIPTION_MODEL
    noise_reduction: Literal["near_field", "far_field"] | None = "far_field"
    max_output_tokens: int | None = None
    temperature: float | None = None  # beta only (GA has no temperature)


def session_update(
    settings: SessionSettings, dialect: Dialect, *, event_id: str | None = None, include_voice: bool = True
) -> dict[str, Any]:
    """The ``session.update`` for ``settings`` in ``dialect``.

    Args:
        event_id: names the event, so an ``error`` the server sends about it can be matched to it.
        include_voice: whether to carry the voice (the API refuses a voice change once the model has spoken, and
            that refusal would take every other setting of the same update with it).
    """
    turn_detection = _turn_detection(settings)
    tools = [dict(t) for t in settings.tools]
    if dialect == "ga":
        audio_in: dict[str, Any] = {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": settings.transcription_model},
            "turn_detection": turn_detection,
        }
        if settings.noise_reduction:
            audio_in["noise_reduction"] = {"type": settings.noise_reduction}
        session: dict[str, Any] = {
            "type": "realtime",
            "instructions": settings.instructions,
            "output_modalities": ["audio"],
            "audio": {"input": audio_in, "output": {"format": {"type": "audio/pcm", "rate": 24000}}},
            "tools": tools,
            "tool_choice": "auto",
        }
        if include_voice:
            session["audio"]["output"]["voice"] = settings.voice
        if settings.max_output_tokens is not None:
            session["max_output_tokens"] = settings.max_output_tokens
    else:
        session = {
            "modalities": ["text", "audio"],
            "instructions": settings.instructions,
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_transcription": {"model": settings.transcription_model},
            "turn_detection": turn_detection,
            "tools": tools,
            "tool_choice": "auto",
        }
        if include_voice:
            session["voice"] = settings.voice
        if settings.noise_reduction:
            session["input_audio_noise_reduction"] = {"type": settings.noise_reduction}
        if settings.max_output_tokens is not None:
            session["max_response_output_tokens"] = settings.max_output_tokens
        if settings.temperature is not None:
            session["temperature"] = settings.temperature
    event: dict[str, Any] = {"type": "session.update", "session": session}
    if event_id is not None:
        event["event_id"] = event_id
    return event


def _turn_detection(settings: SessionSettings) -> dict[str, Any]:
    if settings.turn_detection == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": settings.eagerness,
            "create_response": settings.create_response,
            "interrupt_response": settings.interrupt_response,
        }
    return {
        "type": "server_vad",
        "threshold": settings.vad_threshold,
        "prefix_padding_ms": settings.prefix_padding_ms,
        "silence_duration_ms": settings.silence_duration_ms,
        "create_response": settings.create_response,
        "interrupt_response": settings.interrupt_response,
    }


def audio_append(pcm16: bytes) -> dict[str, Any]:
    """``input_audio_buffer.append`` with 24 kHz mono pcm16."""
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm16).decode("ascii")}


_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'


def audio_append_json(pcm16: bytes) -> str:
    """:func:`audio_append` as the compact JSON text the protocol sends, built without ``json.dumps``: the event is
    sent 50 times a second per speaking room, and base64 never needs escaping, so the text is the same."""
    return _APPEND_HEAD + base64.b64encode(pcm16).decode("ascii") + '"}'


def audio_commit() -> dict[str, Any]:
    return {"type": "input_audio_buffer.commit"}


def audio_clear() -> dict[str, Any]:
    return {"type": "input_audio_buffer.clear"}


def message_item(role: Role, text: str, dialect: Dialect) -> dict[str, Any]:
    """``conversation.item.create`` with a text message (user input, or an earlier assistant answer)."""
    content_type = "input_text" if role == "user" else "output_text" if dialect == "ga" else "text"
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": role, "content": [{"type": content_type, "text": text}]},
    }


def label_item(text: str, previous_item_id: str | None) -> dict[str, Any]:
    """``conversation.item.create`` with a system note (e.g. who speaks) inserted after ``previous_item_id``
    (``None``: at the very start of the conversation, the API's ``root``)."""
    return {
        "type": "conversation.item.create",
        "previous_item_id": previous_item_id if previous_item_id is not None else "root",
        "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]},
    }


def system_note(text: str) -> dict[str, Any]:
    """``conversation.item.create`` with a system note appended at the end of the conversation."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]},
    }


def user_audio_item(pcm16: bytes) -> dict[str, Any]:
    """``conversation.item.create`` with a user message made of 24 kHz mono pcm16 audio (a turn carried over to
    a new connection before its transcript arrived)."""
    audio = base64.b64encode(pcm16).decode("ascii")
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": audio}]},
    }


def function_call_item(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """``conversation.item.create`` re-creating the model's function call ``call_id`` in a new session, so its
    output can follow."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments},
    }


def function_output_item(call_id: str, output: str) -> dict[str, Any]:
    """``conversation.item.create`` answering the function call ``call_id``."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    }


def response_create(request_id: str | None = None) -> dict[str, Any]:
    """``response.create``; ``request_id`` names the request twice: as the event's ``event_id`` (an ``error`` about
    it carries that id) and in the response's ``metadata`` (the ``response.created`` it causes echoes it), so each
    outcome can be matched to the request that caused it."""
    if request_id is None:
        return {"type": "response.create"}
    return {
        "type": "response.create",
        "event_id": f"evt_{request_id}",
        "response": {"metadata": {REQUEST_METADATA_KEY: request_id}},
    }


#: The key of the response metadata that names the bot's request (see :func:`response_create`).
REQUEST_METADATA_KEY = "bot_request"


def response_cancel(response_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response.cancel"}
    if response_id is not None:
        event["response_id"] = response_id
    return event


def item_truncate(item_id: str, content_index: int, audio_end_ms: int) -> dict[str, Any]:
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": content_index,
        "audio_end_ms": audio_end_ms,
    }


def history_items(turns: Sequence[tuple[Role, str]], dialect: Dialect) -> list[dict[str, Any]]:
    """The conversation carried over to a new session, as text items."""
    return [message_item(role, text, dialect) for role, text in turns if text.strip()]
