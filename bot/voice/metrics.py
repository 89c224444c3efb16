"""Thread-safe counters for the voice path: every dropped packet is counted under a reason."""

from __future__ import annotations

import threading
from collections import Counter

from bot.ops import metrics


class VoiceMetrics:
    """Named counters, incremented on the socket thread and read from anywhere.

    Reasons used by the receive path include ``rtcp``, ``runt``, ``bad_rtp``, ``decrypt_failed``, ``unknown_ssrc``,
    ``dave_failed``, ``dave_not_ready``, ``duplicate``, ``late``, ``lost``, ``opus_error``, ``decoded``, and
    ``empty_payload`` (a padding-only packet: nothing to decode).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, reason: str, count: int = 1) -> None:
        """Add ``count`` to the counter ``reason``."""
        with self._lock:
            self._counts[reason] += count
        metrics.voice_packet(reason, count)

    def get(self, reason: str) -> int:
        """The current value of ``reason`` (0 if never counted)."""
        with self._lock:
            return self._counts[reason]

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter."""
        with self._lock:
            return dict(self._counts)
