"""Where the time of a turn goes: four timestamps per user turn and their p50/p95 over recent turns.

A turn's timeline, all in ``time.monotonic`` seconds passed in by the caller:

1. the last voiced inbound frame of the user's speech (:meth:`TurnTimings.voiced_frame`, called for every voiced
   frame; the latest one at or before the end of speech counts),
2. the server's ``speech_stopped`` (:meth:`TurnTimings.speech_stopped`, opens the turn),
3. the first audio delta of the answer (:meth:`TurnTimings.answer_audio`),
4. the first non-silent frame of the answer handed to Discord (:meth:`TurnTimings.first_frame_played`).

Segments: ``voiced_to_stopped`` (the VAD's silence wait), ``stopped_to_answer`` (the model), ``answer_to_played``
(our playback path), and ``voiced_to_played`` (what the user feels). A turn is recorded when it is complete, or
with the segments it has when the next turn supersedes it, so a turn that gets no answer still measures the VAD
wait. Events may be missing or arrive out of order (they come from different threads): each timestamp is kept once
per turn, a voiced frame stamped before ``speech_stopped`` but handed over after it still counts, a segment whose
end is before its start is dropped, answer events with no open turn (a greeting, ``/voice say``) are ignored, and
answer events more than ``max_answer_wait_s`` after ``speech_stopped`` are not attributed to that turn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.ops import metrics
from bot.room.latency import LatencyWindow, Percentiles

_log = logging.getLogger(__name__)

VOICED_TO_STOPPED = "voiced_to_stopped"
STOPPED_TO_ANSWER = "stopped_to_answer"
ANSWER_TO_PLAYED = "answer_to_played"
VOICED_TO_PLAYED = "voiced_to_played"
#: The segments in timeline order, with the labels a status line shows.
SEGMENTS: dict[str, str] = {
    VOICED_TO_STOPPED: "end of speech → speech_stopped",
    STOPPED_TO_ANSWER: "speech_stopped → first answer audio",
    ANSWER_TO_PLAYED: "first answer audio → played",
    VOICED_TO_PLAYED: "end of speech → played",
}
_ENDS: dict[str, tuple[str, str]] = {
    VOICED_TO_STOPPED: ("voiced_s", "stopped_s"),
    STOPPED_TO_ANSWER: ("stopped_s", "answer_s"),
    ANSWER_TO_PLAYED: ("answer_s", "played_s"),
    VOICED_TO_PLAYED: ("voiced_s", "played_s"),
}


@dataclass(slots=True)
class _Turn:
    stopped_s: float
    voiced_s: float | None = None
    answer_s: float | None = None
    played_s: float | None = None


class TurnTimings:
    """Records the four timestamps of each turn and keeps each segment's last ``turns`` samples.

    A turn is recorded when it is complete (all four timestamps), when the next ``speech_stopped`` supersedes it,
    or on :meth:`no_answer`; whatever segments it has then are added. Not thread-safe: call every method from one
    thread (the event loop); a frame seen on the socket thread is handed over with its own timestamp.

    Args:
        turns: How many recent samples each segment keeps.
        max_answer_wait_s: Answer events this long after ``speech_stopped`` do not belong to that turn.
        max_silence_s: A voiced frame this long before ``speech_stopped`` is not the end of that speech (the VAD
            waits well under this).
    """

    def __init__(self, turns: int = 100, *, max_answer_wait_s: float = 30.0, max_silence_s: float = 5.0) -> None:
        if turns < 1:
            raise ValueError(f"turns must be at least 1, not {turns}")
        if not max_answer_wait_s > 0 or not max_silence_s > 0:
            raise ValueError("max_answer_wait_s and max_silence_s must be positive")
        self.max_answer_wait_s = max_answer_wait_s
        self.max_silence_s = max_silence_s
        self._windows = {name: LatencyWindow(size=turns) for name in SEGMENTS}
        self._turn: _Turn | None = None
        self._latest_voiced_s: float | None = None

    def voiced_frame(self, now_s: float) -> None:
        """A voiced inbound frame (any user) at ``now_s``; called per frame, so it only compares and stores."""
        turn = self._turn
        if turn is not None and now_s <= turn.stopped_s:
            if turn.voiced_s is None or now_s > turn.voiced_s:
                turn.voiced_s = now_s  # a frame of this turn handed over late
            return
        if self._latest_voiced_s is None or now_s > self._latest_voiced_s:
            self._latest_voiced_s = now_s

    def speech_stopped(self, now_s: float) -> None:
        """The server's ``speech_stopped``: a new turn starts; an unfinished previous turn is recorded as it is."""
        self._close()
        turn = _Turn(stopped_s=now_s)
        latest_s = self._latest_voiced_s
        if latest_s is not None and latest_s <= now_s:
            if now_s - latest_s <= self.max_silence_s:
                turn.voiced_s = latest_s
            self._latest_voiced_s = None
        self._turn = turn

    def answer_audio(self, now_s: float) -> None:
        """An answer audio delta arrived; only the first one of a turn counts."""
        turn = self._current(now_s)
        if turn is not None and turn.answer_s is None:
            turn.answer_s = now_s
            self._close_if_complete()

    def first_frame_played(self, now_s: float) -> None:
        """The answer's first non-silent frame went to Discord; only the first one of a turn counts."""
        turn = self._current(now_s)
        if turn is not None and turn.played_s is None:
            turn.played_s = now_s
            self._close_if_complete()

    def no_answer(self) -> None:
        """The current turn will not be answered (``name`` mode, a cancelled response): record it as it is."""
        self._close()

    def summary(self) -> dict[str, Percentiles]:
        """p50/p95 in ms of each segment that has samples, in timeline order."""
        found = {name: window.percentiles() for name, window in self._windows.items()}
        return {name: stats for name, stats in found.items() if stats is not None}

    def _current(self, now_s: float) -> _Turn | None:
        turn = self._turn
        if turn is None or now_s - turn.stopped_s > self.max_answer_wait_s:
            return None
        return turn

    def _close_if_complete(self) -> None:
        turn = self._turn
        if turn is not None and None not in (turn.voiced_s, turn.answer_s, turn.played_s):
            self._close()

    def _close(self) -> None:
        turn, self._turn = self._turn, None
        if turn is None:
            return
        for name, (start, end) in _ENDS.items():
            start_s, end_s = getattr(turn, start), getattr(turn, end)
            if start_s is None or end_s is None:
                continue
            if end_s < start_s:
                _log.debug("turn timing %s out of order by %.1f ms; dropped", name, (start_s - end_s) * 1000)
                continue
            self._windows[name].add((end_s - start_s) * 1000.0)
            metrics.turn_segment(name, (end_s - start_s) * 1000.0)
