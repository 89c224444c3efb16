"""What a connection that drops in the middle of a turn hands to the next one, so the turn is not lost.

The old connection's protocol knows whether an answer is still owed, which tool calls of the turn ran (with their
outputs) or still run, and the user's words of the turn: as a transcript (already in the carried history) or, when
the transcript never came, as the audio itself, kept in :class:`RecentAudio`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The longest stretch of recent input audio kept to carry an untranscribed turn over (30 s, 1.4 MB).
CARRY_AUDIO_MAX_MS = 30_000
#: Audio beyond the maximum is dropped in steps of this much (one 1.4 MB move every 5 s, not one per frame).
TRIM_STEP_MS = 5_000
PCM16_BYTES_PER_MS = 48  # 24 kHz mono pcm16


@dataclass(frozen=True, slots=True)
class CarriedCall:
    """A tool call of the unanswered turn: its output, or ``None`` while the tool still runs."""

    call_id: str
    name: str
    arguments: str
    output: str | None = None


@dataclass(frozen=True, slots=True)
class TurnCarry:
    """The unanswered turn of a dropped connection.

    Attributes:
        answer_owed: the user's turn was not answered yet: ask for the answer again on the new connection.
        calls: the turn's tool calls, re-created (with their outputs) before the answer is asked for.
        user_audio: the turn's audio when its transcript never arrived (``b""`` otherwise).
        label: who spoke that turn (``"Alice"``), when the application labelled it.
    """

    answer_owed: bool = False
    calls: tuple[CarriedCall, ...] = ()
    user_audio: bytes = b""
    label: str | None = None


class RecentAudio:
    """The last :data:`CARRY_AUDIO_MAX_MS` of input audio, addressable by the server's session milliseconds
    (``audio_start_ms``/``audio_end_ms`` count from the first byte appended on the connection)."""

    def __init__(self, max_ms: int = CARRY_AUDIO_MAX_MS) -> None:
        self._max_bytes = max_ms * PCM16_BYTES_PER_MS
        self._trim_at_bytes = self._max_bytes + TRIM_STEP_MS * PCM16_BYTES_PER_MS
        self._buffer = bytearray()
        self._dropped_bytes = 0  # bytes of the session's audio no longer kept

    def append(self, pcm16: bytes) -> None:
        self._buffer += pcm16
        if len(self._buffer) > self._trim_at_bytes:  # trim in steps: no per-frame memmove
            cut = len(self._buffer) - self._max_bytes
            del self._buffer[:cut]
            self._dropped_bytes += cut

    def between(self, start_ms: int, end_ms: int) -> bytes:
        """The audio from ``start_ms`` to ``end_ms`` (as much of it as is still kept; even byte count)."""
        start = max(start_ms * PCM16_BYTES_PER_MS - self._dropped_bytes, 0)
        end = min(end_ms * PCM16_BYTES_PER_MS - self._dropped_bytes, len(self._buffer))
        return bytes(self._buffer[start:end]) if end > start else b""
