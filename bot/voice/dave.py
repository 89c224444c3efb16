"""The DAVE (end-to-end encryption) step of the receive path, around the connection's ``davey.DaveSession``.

After transport decryption a frame is either plain Opus (no E2EE, protocol transitions, silence) or a DAVE frame,
which ends with the magic marker ``0xFAFA``. This step passes plain frames through, decrypts DAVE frames with the
session for the sending user, and turns every ``davey`` error into a counted drop (``None``): it never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import davey

from bot.voice.metrics import VoiceMetrics

_log = logging.getLogger(__name__)

#: The Opus frame Discord sends (five times) when a speaker stops; never E2EE-encrypted.
OPUS_SILENCE = b"\xf8\xff\xfe"
#: Every DAVE-encrypted frame ends with this marker.
DAVE_MAGIC_MARKER = b"\xfa\xfa"


class DaveSessionLike(Protocol):
    """The part of ``davey.DaveSession`` this step uses."""

    @property
    def ready(self) -> bool: ...
    def decrypt(self, user_id: int, media_type: davey.MediaType, packet: bytes) -> bytes: ...
    def can_passthrough(self, user_id: int) -> bool: ...


def is_dave_frame(frame: bytes) -> bool:
    """True if ``frame`` carries the DAVE trailer (and so cannot be decoded as Opus as it is)."""
    return frame.endswith(DAVE_MAGIC_MARKER) and len(frame) > len(DAVE_MAGIC_MARKER)


class DaveDecryptStep:
    """Turns a transport-decrypted frame into Opus, or ``None`` (counted in ``metrics``) when it cannot.

    Args:
        state: returns the current ``(session, protocol_version)``; read per frame because discord.py replaces the
            session and the version on reconnects and transitions.
        metrics: where drops are counted: ``dave_unknown_user``, ``dave_not_ready``, ``dave_failed``,
            ``dave_unencrypted``; ``dave_decrypted`` and ``dave_passthrough`` count successes.
    """

    def __init__(self, state: Callable[[], tuple[DaveSessionLike | None, int]], metrics: VoiceMetrics) -> None:
        self._state = state
        self._metrics = metrics

    def process(self, user_id: int | None, frame: bytes) -> bytes | None:
        """Safe to call on the socket thread (touches only the session and the thread-safe metrics)."""
        if frame == OPUS_SILENCE:
            return frame
        session, version = self._state()
        if version == 0 or session is None:
            if is_dave_frame(frame) and session is not None:
                # Leftover E2EE frames right after a downgrade cannot be decoded: drop them.
                self._metrics.add("dave_not_ready")
                return None
            return frame
        if not session.ready:
            if is_dave_frame(frame):
                self._metrics.add("dave_not_ready")
                return None
            self._metrics.add("dave_passthrough")
            return frame
        if user_id is None:
            self._metrics.add("dave_unknown_user")
            return None
        try:
            opus = session.decrypt(user_id, davey.MediaType.audio, frame)
        except ValueError as exc:
            self._metrics.add("dave_unencrypted" if not is_dave_frame(frame) else "dave_failed")
            _log.debug("DAVE decrypt failed for user %s: %s", user_id, exc)
            return None
        self._metrics.add("dave_decrypted" if is_dave_frame(frame) else "dave_passthrough")
        return opus


def connection_dave_state(connection: object) -> Callable[[], tuple[DaveSessionLike | None, int]]:
    """A reader of ``(dave_session, dave_protocol_version)`` from a discord.py ``VoiceConnectionState``."""

    def read() -> tuple[DaveSessionLike | None, int]:
        session = getattr(connection, "dave_session", None)
        version = getattr(connection, "dave_protocol_version", 0)
        return session, int(version)

    return read
