"""The room: per-user frame queues mixed into one stream of 20 ms slots, and a timeline of who spoke when.

Pure (no asyncio, no discord); the clock is injected. The Realtime input buffer the stream feeds is a buffer, not a
loudspeaker: it needs no real-time pacing, only the speakers mixed in step and the silence after speech sent in real
time. So a slot leaves as soon as it is complete, and a clock is only a deadline:

- :meth:`RoomMixer.take_ready` (called after each :meth:`~RoomMixer.push` and :meth:`~RoomMixer.end_of_speech`)
  mixes the next slot at once when every speaker who is playing has a frame ready, and returns it. With one steady
  speaker (the common case) each frame leaves the moment it is pushed; two steady speakers leave as one mix when the
  second of their two frames arrives. (Someone who starts talking while another plays joins the slot after the one
  that left without them: while both talk on, the newcomer's frames wait for the other's next ones, less than a
  frame, as every frame waited for the room clock before.)
- :meth:`RoomMixer.tick` (called by a driver at :attr:`~RoomMixer.next_due_s`) is the deadline. Once the last
  slot is one frame period plus :data:`DEFAULT_DEADLINE_GRACE_MS` old, it mixes whatever is ready (a speaker whose
  frame is late is left out and plays from a later slot; their queue ran dry); after the last speaker it returns
  silence for ``tail_ms`` more, one slot per frame period from the last slot on (so server-side VAD hears the end of
  speech in real time); then the room is idle (:attr:`RoomMixer.active` is false) and nothing needs sending.

Frames are 20 ms of pcm16 in the mixer's ``pcm_format``: the bot's voice client mixes 24 kHz mono (the Realtime
API's format, what its receiver decodes to); the default is Discord's 48 kHz stereo. Each frame comes with its
level, measured once by the receiver; the mixer only compares it with the voiced floor. A frame lasts
``frame_period_s`` of the injected clock: 20 ms, unless a benchmark runs the room faster than real time.

Jitter priming. A speaker's queue starts being played once it holds its priming target of frames or its first frame
has waited that many frames' time (``prime_ms`` overrides the time), and while it plays it keeps ``target - 1``
frames in reserve: a frame of it is ready when its queue holds ``target`` frames (or the speaker ended the talk
spurt), and the deadline takes the reserve when a frame is late. The target starts at ``prime_frames``: one frame,
no wait, no reserve, where the stream is steady. It adapts per speaker: a queue that runs dry mid-talk-spurt (the
next frame arrives within ``STARVED_WINDOW_FRAMES`` frames, so it was late, not the end of the speech) is an underrun
(counted in :attr:`RoomMixer.underruns`); a second one within ``STEADY_FRAMES_TO_LOWER`` frames played raises that
speaker's target by a frame, up to ``max_prime_frames`` (one isolated late frame does not: it costs one gap, while a
raised target costs a frame of latency on every frame for seconds); every ``STEADY_FRAMES_TO_LOWER`` frames played
without an underrun lower it again by one. A speaker still priming is
not waited for: the others' slots go on, and they join once primed. A queue longer than ``max_queue_frames`` loses
its oldest frames (counted).
"""

from __future__ import annotations

import bisect
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.audio.formats import DISCORD, FRAME_MS, PcmFormat
from bot.audio.level import rms_dbfs
from bot.audio.mixer import mix_pcm16

DEFAULT_TAIL_MS = 300
#: A frame quieter than this does not make its user a speaker in the timeline (mic hiss, Opus silence).
DEFAULT_VOICED_FLOOR_DBFS = -55.0
#: One frame: a steady stream plays as soon as a frame is there.
DEFAULT_PRIME_FRAMES = 1
#: The most a jittery speaker's priming target grows to (60 ms).
DEFAULT_MAX_PRIME_FRAMES = 3
#: A frame arriving this many frames' time after its queue ran dry was late (an underrun), not the start of new
#: speech (100 ms).
STARVED_WINDOW_FRAMES = 5
#: Frames played in a row without an underrun before a raised priming target comes down by one (5 s).
STEADY_FRAMES_TO_LOWER = 250
DEFAULT_MAX_QUEUE_FRAMES = 15
#: Timeline segments kept (one per change of who is voiced): about 0.5 MB at most, and at least 5.5 minutes of
#: speech even if the speakers changed every single frame (hours of ordinary conversation).
DEFAULT_TIMELINE_SEGMENTS = 16_384
#: Frames of the same speakers this close together belong to one segment (a slot leaves when its frames arrive, 20 ms
#: apart give or take the network's jitter, or at the deadline, a frame period and the grace after the last slot).
DEFAULT_JOIN_GAP_S = 0.05
#: How late past one frame period after the last slot a frame may come and still make the next slot, before the
#: deadline sends the slot without it (that speaker's queue ran dry: an underrun, which raises their priming
#: target). Half a frame: on the wire benchmark 99.99% of one steady speaker's frames reached the mixer at most
#: 27.2 ms after the one before (bench/FINDINGS.md, issue 16, "Slots leave when complete"); and it only delays what
#: the deadline sends (the start of the silence tail, a mix waiting for a late speaker), never a frame in time.
DEFAULT_DEADLINE_GRACE_MS = 10.0
#: Distinct sets of voiced users shared between segments before the table starts again.
MAX_INTERNED_SETS = 256
_EPSILON_S = 1e-6


@dataclass
class _Queue:
    target: int
    frames: deque[tuple[bytes, float]] = field(default_factory=deque)
    partial: bytes = b""
    primed: bool = False
    first_at_s: float = 0.0
    starved_at_s: float | None = None  # ran dry mid-spurt at this instant (None: not starved, or the spurt ended)
    spurt_ended: bool = False  # the speaker sent the silence frame after the frames queued
    steady: int = 0  # frames played since the last underrun, while the target is raised
    played: int = 0  # frames played in all
    last_underrun_at: int | None = None  # :attr:`played` at the last underrun


class SpeakerTimeline:
    """Who was voiced when, stored as changes: one segment per run of frames with the same voiced users. Bounded.

    A segment is ``(first instant, last instant, frames, users)``: consecutive frames (no more than
    ``max_gap_s`` apart) with the same non-empty set of voiced users extend the current segment instead of adding a
    record, so memory follows how often the set of speakers changes, not how long people talk. Frames in which nobody
    is voiced are not stored (they end the current segment). At most ``max_segments`` segments are kept; the oldest
    go first (in chunks, so appending stays amortised O(1)).

    Queries bisect the segments in place (no copy): :meth:`speakers_between` costs O(log n + segments in the window).
    """

    def __init__(self, max_segments: int = DEFAULT_TIMELINE_SEGMENTS, *, max_gap_s: float = DEFAULT_JOIN_GAP_S) -> None:
        if max_segments < 1 or max_gap_s < 0:
            raise ValueError("need max_segments >= 1 and max_gap_s >= 0")
        self._max_segments = max_segments
        self._trim_chunk = max(1, max_segments // 4)
        self._max_gap_s = max_gap_s
        self._firsts_s = array("d")
        self._lasts_s = array("d")
        self._frames = array("L")
        self._users: list[frozenset[int]] = []
        self._interned: dict[frozenset[int], frozenset[int]] = {}
        self._last_at_s: float | None = None
        self._open = False  # the last recorded frame extends the last segment

    def record(self, at_s: float, user_ids: frozenset[int]) -> None:
        """Add one frame (instants must not go backwards)."""
        last_at_s = self._last_at_s
        if last_at_s is not None and at_s < last_at_s:
            raise ValueError(f"timeline instants must not go backwards ({at_s} < {last_at_s})")
        self._last_at_s = at_s
        if not user_ids:
            self._open = False
            return
        if self._open and last_at_s is not None and at_s - last_at_s <= self._max_gap_s and self._users[-1] == user_ids:
            self._lasts_s[-1] = at_s
            self._frames[-1] += 1
            return
        self._firsts_s.append(at_s)
        self._lasts_s.append(at_s)
        self._frames.append(1)
        self._users.append(self._intern(user_ids))
        self._open = True
        if len(self._users) > self._max_segments + self._trim_chunk:
            del self._firsts_s[: self._trim_chunk]
            del self._lasts_s[: self._trim_chunk]
            del self._frames[: self._trim_chunk]
            del self._users[: self._trim_chunk]

    def speakers_between(self, start_s: float, end_s: float) -> set[int]:
        """User ids voiced in any frame recorded at an instant in ``[start_s, end_s]``."""
        found: set[int] = set()
        if end_s < start_s:
            return found
        index = bisect.bisect_left(self._lasts_s, start_s)  # the first segment still running at start_s
        count = len(self._users)
        while index < count and self._firsts_s[index] <= end_s:
            found |= self._users[index]
            index += 1
        return found

    def voiced_ms(self, user_id: int, start_s: float, end_s: float) -> float:
        """How long ``user_id`` was voiced between two instants (20 ms per frame; a segment cut by the window counts
        the frames its covered part holds at one per 20 ms)."""
        total_frames = 0
        index = bisect.bisect_left(self._lasts_s, start_s)
        count = len(self._users)
        while index < count and self._firsts_s[index] <= end_s:
            if user_id in self._users[index]:
                first_s, last_s, frames = self._firsts_s[index], self._lasts_s[index], self._frames[index]
                if start_s <= first_s and last_s <= end_s:
                    total_frames += frames
                else:
                    covered_s = min(last_s, end_s) - max(first_s, start_s)
                    total_frames += min(frames, round(covered_s * 1000 / FRAME_MS) + 1)
            index += 1
        return FRAME_MS * total_frames

    def __len__(self) -> int:
        """Segments held (not frames)."""
        return len(self._users)

    def _intern(self, user_ids: frozenset[int]) -> frozenset[int]:
        """One shared instance per distinct set of users (a few per room), so segments do not each hold a set."""
        shared = self._interned.get(user_ids)
        if shared is None:
            if len(self._interned) >= MAX_INTERNED_SETS:
                self._interned.clear()
            shared = self._interned[user_ids] = user_ids
        return shared


class RoomMixer:
    """Per-user pcm16 in ``pcm_format`` (any size, usually 20 ms frames), one mixed stream of 20 ms slots out.

    Not thread-safe: push, take_ready and tick from one thread (the event loop).
    """

    def __init__(
        self,
        now: Callable[[], float],
        *,
        tail_ms: float = DEFAULT_TAIL_MS,
        prime_frames: int = DEFAULT_PRIME_FRAMES,
        prime_ms: float | None = None,
        max_prime_frames: int | None = None,
        max_queue_frames: int = DEFAULT_MAX_QUEUE_FRAMES,
        timeline: SpeakerTimeline | None = None,
        voiced_floor_dbfs: float = DEFAULT_VOICED_FLOOR_DBFS,
        pcm_format: PcmFormat = DISCORD,
        frame_period_s: float = FRAME_MS / 1000,
        deadline_grace_ms: float = DEFAULT_DEADLINE_GRACE_MS,
    ) -> None:
        """``now`` is the clock (seconds). ``frame_period_s`` is how long a 20 ms frame lasts on it (real time but
        for a benchmark running faster); ``prime_ms``, ``deadline_grace_ms`` and the tail are in audio ms, scaled
        with it."""
        max_prime = max_prime_frames if max_prime_frames is not None else max(prime_frames, DEFAULT_MAX_PRIME_FRAMES)
        if tail_ms < 0 or prime_frames < 1 or max_prime < prime_frames or max_queue_frames < max_prime:
            raise ValueError(
                "need tail_ms >= 0, prime_frames >= 1 and prime_frames <= max_prime_frames <= max_queue_frames"
            )
        if frame_period_s <= 0 or deadline_grace_ms < 0:
            raise ValueError("need frame_period_s > 0 and deadline_grace_ms >= 0")
        self._now = now
        self._period_s = frame_period_s
        self._s_per_audio_ms = frame_period_s / FRAME_MS
        self._grace_s = deadline_grace_ms * self._s_per_audio_ms
        self._tail_frames = int(tail_ms // FRAME_MS)
        self._prime_frames = prime_frames
        self._max_prime_frames = max_prime
        self._prime_s = prime_ms * self._s_per_audio_ms if prime_ms is not None else None
        self._max_queue = max_queue_frames
        self.pcm_format = pcm_format
        self._frame_bytes = pcm_format.bytes_for_ms(FRAME_MS)
        #: The silent slot sent while someone primes and during the tail.
        self.silence_frame = bytes(self._frame_bytes)
        self.underruns = 0
        self._queues: dict[int, _Queue] = {}
        self._tail_left = 0
        #: When the deadline sends the next slot (None: the room is idle; the next slot is due at once).
        self._due_s: float | None = None
        self.timeline = timeline if timeline is not None else SpeakerTimeline()
        self.dropped_frames = 0
        self._voiced_floor_dbfs = voiced_floor_dbfs

    @property
    def tail_ms(self) -> float:
        return self._tail_frames * FRAME_MS

    def set_tail_ms(self, tail_ms: float) -> None:
        """Change the silence tail (e.g. to outlast the server VAD's silence duration); applies from the next run."""
        if tail_ms < 0:
            raise ValueError(f"tail_ms must be >= 0, got {tail_ms}")
        self._tail_frames = int(tail_ms // FRAME_MS)

    @property
    def active(self) -> bool:
        """True while the stream runs (speech queued, or slots still to come: the tail, or a deadline to check)."""
        return self._due_s is not None or any(q.frames for q in self._queues.values())

    @property
    def next_due_s(self) -> float | None:
        """When :meth:`tick` next has something to do, on the mixer's clock: the deadline of the next slot; now, when
        frames wait and no slot has left yet; ``None`` when the room is idle."""
        if self._due_s is not None:
            return self._due_s
        return self._now() if any(q.frames for q in self._queues.values()) else None

    def priming_target(self, user_id: int) -> int:
        """Frames ``user_id``'s queue waits for before it plays (the adaptive target; ``prime_frames`` if unknown)."""
        queue = self._queues.get(user_id)
        return queue.target if queue is not None else self._prime_frames

    def push(self, user_id: int, pcm16: bytes, level_dbfs: float | None = None) -> None:
        """Queue a user's decoded audio (pcm16 in :attr:`pcm_format`) with its level, measured once by the receiver
        (``None``: measured here, per frame). Partial frames are carried to the next push. Nothing is mixed here:
        call :meth:`take_ready` next."""
        queue = self._queues.get(user_id)
        if queue is None:
            queue = self._queues[user_id] = _Queue(self._prime_frames)
        size = self._frame_bytes
        if not queue.partial and len(pcm16) == size:  # the usual case: one whole frame
            data, whole = pcm16, size
        else:
            data = queue.partial + pcm16
            whole = len(data) - len(data) % size
            queue.partial = data[whole:]
            level_dbfs = None  # the frames are not the frame the level was measured on
        if not whole:
            return
        if not queue.frames:
            now_s = self._now()
            queue.first_at_s = now_s
            starved_window_s = STARVED_WINDOW_FRAMES * self._period_s
            if queue.starved_at_s is not None and now_s - queue.starved_at_s <= starved_window_s:
                self._underrun(queue)
            queue.starved_at_s = None
        queue.spurt_ended = False
        if whole == len(data) == size:
            queue.frames.append((data, level_dbfs if level_dbfs is not None else rms_dbfs(data)))
        else:
            for offset in range(0, whole, size):
                frame = data[offset : offset + size]
                queue.frames.append((frame, rms_dbfs(frame)))
        while len(queue.frames) > self._max_queue:
            queue.frames.popleft()
            self.dropped_frames += 1

    def end_of_speech(self, user_id: int) -> None:
        """The user sent a silence frame: play what is queued at once (no more priming wait, no reserve kept);
        their queue running dry now is the end of the speech, not an underrun. Call :meth:`take_ready` next."""
        queue = self._queues.get(user_id)
        if queue is None:
            return
        queue.starved_at_s = None
        queue.spurt_ended = True
        if queue.frames:
            queue.primed = True

    def forget(self, user_id: int) -> None:
        """Drop a user's queue (they left)."""
        self._queues.pop(user_id, None)

    def take_ready(self) -> bytes | None:
        """The next slot, mixed now, if it is complete: every speaker who is playing has a frame ready (a steady
        speaker's frame is ready as soon as it is pushed) and at least one has. ``None``: wait for more frames or
        the deadline (:meth:`tick`). Call it until it returns ``None``: a slot may leave others complete behind it."""
        now_s = self._now()
        if not self._complete(now_s):
            return None
        self._due_s = now_s + self._period_s + self._grace_s
        return self._mix_slot(now_s)

    def tick(self) -> bytes | None:
        """The deadline check, called at :attr:`next_due_s` (an early call returns ``None``): a complete slot (as
        :meth:`take_ready`), else, once the last slot is a frame period and the grace old, the slot the deadline
        sends (a mix of what is ready, silence while someone primes, the tail), else ``None`` (nothing due, or the
        room went idle: see :attr:`active`). Deadline slots follow each other a frame period apart."""
        now_s = self._now()
        if self._complete(now_s):
            self._due_s = now_s + self._period_s + self._grace_s
            return self._mix_slot(now_s)
        due_s = self._due_s
        if due_s is not None and now_s < due_s - _EPSILON_S:
            return None
        slot = self._mix_slot(now_s)
        self._due_s = None if slot is None else (due_s if due_s is not None else now_s) + self._period_s
        return slot

    def _complete(self, now_s: float) -> bool:
        """Whether the next slot can leave now: every playing queue has a frame ready, or ended its talk spurt."""
        ready = False
        for queue in self._queues.values():
            if not queue.primed:
                if not queue.frames or not self._primes_now(queue, now_s):
                    continue  # priming (or silent): not waited for
                queue.primed = True
            held = len(queue.frames)
            if held >= queue.target or (held and queue.spurt_ended):
                ready = True
            elif not queue.spurt_ended:
                return False  # its next frame is not here yet (or it is its reserve): wait for it or the deadline
        return ready

    def _mix_slot(self, now_s: float) -> bytes | None:
        """One slot: a frame of every playing speaker who has one, mixed; silence while someone primes or during
        the tail; ``None`` when there is nothing left to send. A playing queue found dry stops playing here."""
        frames: list[bytes] = []
        voiced: set[int] = set()
        for user_id, queue in self._queues.items():
            if not queue.frames:
                if queue.primed:  # ran dry while playing: late, or the end of the speech (end_of_speech says which)
                    queue.primed = False
                    if not queue.spurt_ended:
                        queue.starved_at_s = now_s
                continue
            if not queue.primed and self._primes_now(queue, now_s):
                queue.primed = True
            if queue.primed:
                frame, level_dbfs = queue.frames.popleft()
                queue.played += 1
                frames.append(frame)
                if level_dbfs > self._voiced_floor_dbfs:  # a speaker's silence is not speech
                    voiced.add(user_id)
                if queue.target > self._prime_frames:
                    queue.steady += 1
                    if queue.steady >= STEADY_FRAMES_TO_LOWER:
                        queue.target -= 1
                        queue.steady = 0
        if frames:
            self._tail_left = self._tail_frames
            self.timeline.record(now_s, frozenset(voiced))
            return mix_pcm16(frames)
        if any(q.frames for q in self._queues.values()):
            return self.silence_frame  # someone is priming: keep the stream going
        if self._tail_left > 0:
            self._tail_left -= 1
            return self.silence_frame
        return None

    def _primes_now(self, queue: _Queue, now_s: float) -> bool:
        """A queue not yet playing starts: it holds its target, or its first frame waited the priming time."""
        return len(queue.frames) >= queue.target or now_s - queue.first_at_s >= self._prime_wait_s(queue) - _EPSILON_S

    def _prime_wait_s(self, queue: _Queue) -> float:
        return self._prime_s if self._prime_s is not None else queue.target * self._period_s

    def _underrun(self, queue: _Queue) -> None:
        """Count a late frame; a second one within :data:`STEADY_FRAMES_TO_LOWER` frames played raises the target (one
        isolated late frame, a hiccup of the network or the machine, does not: a reserve held for the next 5 s
        would add a frame to every one of its frames for one gap)."""
        self.underruns += 1
        queue.steady = 0
        repeated = queue.last_underrun_at is not None and queue.played - queue.last_underrun_at < STEADY_FRAMES_TO_LOWER
        queue.last_underrun_at = queue.played
        if repeated and queue.target < self._max_prime_frames:
            queue.target += 1
