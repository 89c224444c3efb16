"""Barge-in guard: is a user's speech during the bot's playback a real interruption?

The problem. While the bot talks, the server VAD reports ``speech_started`` for anything that sounds like speech in
the mixed room audio. Three things trigger it:

* **Echo**: the bot's own voice leaking from someone's speakers into their open microphone. It arrives attenuated
  by the acoustic path and by Discord's echo cancellation, typically 15-30 dB below how that person sounds when
  they speak, and often below -45 dBFS altogether.
* **Bursts**: a cough, a laugh, a keyboard clack, a door. Loud, but short: one burst of 100-150 ms.
* **A real interruption**: someone talks over the bot. It lasts (a word is ~250 ms of voiced audio, a sentence more)
  and it is as loud as that person usually speaks.

The model. Every 20 ms frame of every user carries a level (RMS dBFS, :func:`bot.audio.level.rms_dbfs`). While the
bot is silent, frames above the absolute floor (``threshold_db``) are that user's speech: the guard keeps a bounded
history of them and their median is the user's *reference level* (the room's reference, over all users, stands in
for a user not yet heard). When ``speech_started`` arrives during playback, the caller :meth:`BargeInGuard.arm`\\ s
the guard; from then on (and over a short look-back, because the VAD fires after speech began) a frame counts as
*voiced* when it is above the floor **and** no more than ``relative_db`` below the user's reference. Each user's
voiced time adds up separately; a silence longer than ``max_gap_ms`` between voiced frames starts that user's count
again, so two coughs a second apart never add up to a word. Once one user reaches ``min_voiced_ms`` the guard
decides "interrupt" and stays decided until :meth:`BargeInGuard.disarm`.

So: a 140 ms cough never interrupts (too short), echo at -50 dBFS never does (below the floor), echo at -38 dBFS
from a person who speaks at -20 dBFS does not either (too far below their reference), and a spoken sentence does
after about a quarter of a second of voice. Levels are compared per user because microphones differ by 20 dB and
more; a quiet microphone is judged against its own speech, not against the loudest person in the room.

Pure logic: no clock of its own (times are ``time.monotonic`` seconds passed in), no I/O, one thread at a time.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from bot.audio.level import SILENCE_DBFS, rms_dbfs

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Run:
    """One user's voiced time since arming."""

    voiced_ms: float = 0.0
    last_voiced_s: float | None = None


class BargeInGuard:
    """Decides when speech during the bot's playback is a real interruption (see the module docstring).

    Use: :meth:`feed` (or :meth:`feed_pcm16`) every inbound 20 ms frame of every user; :meth:`set_playing` when the
    bot's playback starts and stops (references are learnt only in between); :meth:`arm` on ``speech_started``
    during playback and :meth:`disarm` on ``speech_stopped`` or when playback ends; interrupt (cancel and truncate
    at the played position) once :meth:`should_interrupt` is true.

    Args:
        min_voiced_ms: Voiced audio one user needs, since arming, to interrupt.
        threshold_db: Absolute floor in dBFS: quieter frames are never voice.
        relative_db: How far below the user's (or room's) reference level a frame may be and still be voice.
        max_gap_ms: A longer silence between a user's voiced frames starts their count again.
        lookback_ms: Frames this long before :meth:`arm` count too (the VAD fires after speech began).
        frame_ms: Duration of one fed frame.
        reference_frames: How many voiced frames per user (and for the room) the reference remembers.
        min_reference_frames: Voiced frames needed before a user's own reference is trusted.
    """

    def __init__(
        self,
        *,
        min_voiced_ms: float = 250.0,
        threshold_db: float = -45.0,
        relative_db: float = 12.0,
        max_gap_ms: float = 400.0,
        lookback_ms: float = 300.0,
        frame_ms: float = 20.0,
        reference_frames: int = 1500,
        min_reference_frames: int = 25,
    ) -> None:
        for name, value in (
            ("min_voiced_ms", min_voiced_ms),
            ("relative_db", relative_db),
            ("max_gap_ms", max_gap_ms),
            ("lookback_ms", lookback_ms),
        ):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
        if not math.isfinite(frame_ms) or frame_ms <= 0:
            raise ValueError(f"frame_ms must be a finite number > 0, not {frame_ms!r}")
        if not math.isfinite(threshold_db) or not SILENCE_DBFS <= threshold_db <= 0.0:
            raise ValueError(f"threshold_db must be between {SILENCE_DBFS} and 0 dBFS, not {threshold_db!r}")
        if reference_frames < 1 or not 1 <= min_reference_frames <= reference_frames:
            raise ValueError("reference_frames and min_reference_frames must satisfy 1 <= min <= reference_frames")
        self.min_voiced_ms = min_voiced_ms
        self.threshold_db = threshold_db
        self.relative_db = relative_db
        self.max_gap_ms = max_gap_ms
        self.lookback_ms = lookback_ms
        self.frame_ms = frame_ms
        self._reference_frames = reference_frames
        self._min_reference_frames = min_reference_frames
        self._playing = False
        self._history: dict[int, deque[float]] = {}
        self._room: deque[float] = deque(maxlen=reference_frames)
        self._recent: dict[int, deque[tuple[float, float]]] = {}
        self._armed_at_s: float | None = None
        self._references: dict[int, float] = {}
        self._room_reference: float | None = None
        self._runs: dict[int, _Run] = {}
        self._interrupter: int | None = None
        self._decided_at_s: float | None = None

    # -- inputs -------------------------------------------------------------------------------------------------

    def set_playing(self, playing: bool) -> None:
        """Tell the guard whether the bot is playing audio: references are learnt only while it is silent."""
        self._playing = playing

    def feed(self, user_id: int, level_dbfs: float, now_s: float) -> None:
        """One 20 ms frame of ``user_id`` at ``level_dbfs`` (a non-finite level counts as silence)."""
        if not math.isfinite(level_dbfs):
            level_dbfs = SILENCE_DBFS
        recent = self._recent.setdefault(user_id, deque())
        recent.append((now_s, level_dbfs))
        horizon_s = now_s - (self.lookback_ms + self.frame_ms) / 1000.0
        while recent and recent[0][0] < horizon_s:
            recent.popleft()
        if self._armed_at_s is not None:
            if now_s >= self._armed_at_s - self.lookback_ms / 1000.0:
                self._count(user_id, level_dbfs, now_s)
        elif not self._playing and level_dbfs >= self.threshold_db:
            self._history.setdefault(user_id, deque(maxlen=self._reference_frames)).append(level_dbfs)
            self._room.append(level_dbfs)

    def feed_pcm16(self, user_id: int, pcm16: bytes, now_s: float) -> None:
        """One frame of pcm16 audio of ``user_id``; its level is measured with :func:`rms_dbfs`."""
        self.feed(user_id, rms_dbfs(pcm16), now_s)

    def arm(self, now_s: float) -> None:
        """``speech_started`` arrived during playback: start counting voiced audio (already armed: no change)."""
        if self._armed_at_s is not None:
            return
        self._armed_at_s = now_s
        self._references = {
            user_id: statistics.median(levels)
            for user_id, levels in self._history.items()
            if len(levels) >= self._min_reference_frames
        }
        self._room_reference = statistics.median(self._room) if len(self._room) >= self._min_reference_frames else None
        start_s = now_s - self.lookback_ms / 1000.0
        for user_id, recent in self._recent.items():
            for frame_s, level_dbfs in recent:
                if frame_s >= start_s:
                    self._count(user_id, level_dbfs, frame_s)
        _log.debug("barge-in guard armed (room reference %s dBFS)", self._room_reference)

    def disarm(self) -> None:
        """Playback ended or the speech stopped: forget the counts and the decision."""
        self._armed_at_s = None
        self._runs.clear()
        self._interrupter = None
        self._decided_at_s = None

    def forget(self, user_id: int) -> None:
        """The user left: drop what was learnt about them (the room reference keeps their frames)."""
        self._history.pop(user_id, None)
        self._recent.pop(user_id, None)
        self._runs.pop(user_id, None)
        self._references.pop(user_id, None)

    def retain(self, present: Collection[int]) -> None:
        """Forget everyone not in ``present`` (the channel's members), as :meth:`forget` does for one user: the guard
        keeps state only for people in the room, however many come and go."""
        for user_id in self.users_known.difference(present):
            self.forget(user_id)

    @property
    def users_known(self) -> frozenset[int]:
        """Users the guard holds any state for."""
        return frozenset(self._history.keys() | self._recent.keys() | self._runs.keys() | self._references.keys())

    # -- decision -----------------------------------------------------------------------------------------------

    @property
    def armed(self) -> bool:
        return self._armed_at_s is not None

    @property
    def interrupter(self) -> int | None:
        """The user whose speech decided the interruption, if any."""
        return self._interrupter

    def should_interrupt(self, now_s: float) -> bool:
        """True once one user's voiced audio since arming reached ``min_voiced_ms`` (until :meth:`disarm`).

        ``now_s`` is the caller's current time: a decision taken on a frame stamped later than ``now_s`` (frames
        handed over out of order with the caller's clock) is not reported yet.
        """
        return self._decided_at_s is not None and self._decided_at_s <= now_s

    def reference_dbfs(self, user_id: int | None = None) -> float | None:
        """The learnt reference level of ``user_id`` (or of the room): the median of voiced frames, if enough."""
        levels = self._room if user_id is None else self._history.get(user_id, ())
        return statistics.median(levels) if len(levels) >= self._min_reference_frames else None

    # -- internals ----------------------------------------------------------------------------------------------

    def _is_voiced(self, user_id: int, level_dbfs: float) -> bool:
        if level_dbfs < self.threshold_db:
            return False
        reference = self._references.get(user_id, self._room_reference)
        return reference is None or level_dbfs >= reference - self.relative_db

    def _count(self, user_id: int, level_dbfs: float, frame_s: float) -> None:
        if not self._is_voiced(user_id, level_dbfs):
            return
        run = self._runs.setdefault(user_id, _Run())
        if run.last_voiced_s is not None:
            gap_ms = (frame_s - run.last_voiced_s) * 1000.0 - self.frame_ms
            if gap_ms > self.max_gap_ms:
                run.voiced_ms = 0.0
            elif frame_s <= run.last_voiced_s:
                return  # the same frame again, or one out of order already covered
        run.voiced_ms += self.frame_ms
        run.last_voiced_s = frame_s
        if self._interrupter is None and run.voiced_ms >= self.min_voiced_ms:
            self._interrupter = user_id
            self._decided_at_s = frame_s
            _log.info("barge-in: user %s spoke %.0f ms over the bot", user_id, run.voiced_ms)
