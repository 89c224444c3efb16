"""What a session keeps and tells: transcripts and notices in text chat, usage in the store, and the figures and
timings ``/voice status`` shows.

Transcripts name who spoke (several names when people overlapped); members who opted out of transcripts show as
"(someone)" without their words. Usage is written as it comes (tokens and cost per answer) and in steps (session
seconds and per-user talk time). A write that fails (a locked or full disk, a store that does not answer) loses
nothing: what was not written stays in :class:`UnwrittenUsage` and goes with the next write; only what is still
unwritten when the session closes is given up, and then logged with its figures.

The store is awaited, never from the event-loop callbacks: an answer's usage starts a write task of its own, the
watchdog's steps and the close await :meth:`SessionRecord.write_usage`. Writes go one at a time, in order; what
arrives while one is under way waits in :class:`UnwrittenUsage` for the next.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import discord

from bot import texts
from bot.ops import metrics
from bot.room.attribution import speaker_label
from bot.room.latency import LatencyWindow
from bot.room.turn_timing import SEGMENTS, TurnTimings
from bot.session.state import SessionState
from bot.store import STORE_CALL_TIMEOUT_S, SettingsStore, StoreOutcomeUnknown
from bot.texts.fit import EMBED_FIELD_VALUE_CHARS, join_within

_log = logging.getLogger(__name__)

RECENT_SPEAKER_WINDOW_S = 120.0
FRAME_S = 0.02


@dataclass
class UnwrittenUsage:
    """Usage counted but not yet in the store."""

    seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    talk_s: dict[int, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.seconds or self.input_tokens or self.output_tokens or self.cost_usd or self.talk_s)

    def describe(self) -> str:
        """The figures, for a log line (user ids and numbers only)."""
        talk = ", ".join(f"{user_id}: {seconds:.1f} s" for user_id, seconds in sorted(self.talk_s.items()))
        return (
            f"{self.seconds:.1f} s, {self.input_tokens} input tokens, {self.output_tokens} output tokens, "
            f"${self.cost_usd:.4f}, talk time {{{talk}}}"
        )


@dataclass
class SessionFigures:
    """Counters shown by ``/voice status``."""

    reconnects: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    #: False once a response came from a model without a price table: the cost shown would be wrong.
    cost_known: bool = True
    turns: int = 0
    answered_turns: int = 0
    interruptions: int = 0
    ignored_barge_ins: int = 0


class SessionRecord:
    """One session's transcripts, notices, usage, figures and turn timings."""

    def __init__(
        self,
        state: SessionState,
        store: SettingsStore,
        *,
        member_names: Callable[[], Mapping[int, str]],
        post: Callable[[str], None] | None = None,
    ) -> None:
        self._state = state
        self._store = store
        self._member_names = member_names
        self._post = post
        self.figures = SessionFigures()
        self.response_latency = LatencyWindow()
        self.turn_timings = TurnTimings()
        self._speech_stopped_at_s: float | None = None
        self._awaiting_first_audio = False
        self._recent_speakers: dict[int, float] = {}
        self.unwritten = UnwrittenUsage()
        self._accounted_s = 0.0
        #: Held by the write under way, so writes go one at a time and a forgotten member's talk waits for it.
        self._write_lock = asyncio.Lock()
        #: The writes started by answers' usage, until they end (awaited by :meth:`settle`).
        self._writes: set[asyncio.Task[bool]] = set()
        #: Followers of writes that outlasted their bound while running (see :meth:`_hand_over`).
        self._in_doubt: set[asyncio.Task[None]] = set()
        #: How often each member asked to be forgotten in this session: talk time written before that is never put
        #: back.
        self._forgets: Counter[int] = Counter()
        self._transcript_notice_posted = False
        self._name_mode_tip_posted = False

    # -- text chat -----------------------------------------------------------------------------------------------

    def notify(self, message: str) -> None:
        """Post ``message`` to the session's text channel; a failing post is logged, never raised."""
        if self._post is not None:
            try:
                self._post(message)
            except Exception:
                _log.exception("guild %s: posting to the text channel failed", self._state.guild_id)

    def consent(self, notice: str) -> None:
        """Post the session's consent notice; it says whether transcripts are on, so that need not be said again."""
        self.notify(notice)
        self._transcript_notice_posted = self._state.settings.transcripts

    def announce_transcripts(self) -> None:
        """With transcripts on, say so once per session."""
        if self._state.settings.transcripts and not self._transcript_notice_posted:
            self._transcript_notice_posted = True
            self.notify(texts.TRANSCRIPTS_NOTICE)

    def suggest_name_mode(self) -> None:
        """Once per session: people are talking to each other, so answering only when called may suit them."""
        if not self._name_mode_tip_posted:
            self._name_mode_tip_posted = True
            self.notify(texts.name_mode_tip(self._state.persona.name))

    def user_transcript(self, speakers: frozenset[int], text: str) -> None:
        self.figures.turns += 1
        metrics.turn_transcribed()
        if not self._state.settings.transcripts:
            return
        hidden = {uid for uid in speakers if self._state.privacy_of(uid).no_transcript}
        label = speaker_label(speakers, self._member_names(), hidden=hidden)
        self.notify(texts.transcript_line(label, text) if not hidden else texts.hidden_turn_line())

    def assistant_transcript(self, text: str) -> None:
        if self._state.settings.transcripts:
            self.notify(texts.transcript_line(self._state.persona.name, text))

    def tool_call(self, name: str, arguments: str, output: str) -> None:
        if self._state.settings.transcripts:
            self.notify(texts.tool_call_line(name, arguments, output))

    # -- turns and timings -----------------------------------------------------------------------------------------

    def voiced_frame(self, user_id: int, now_s: float) -> None:
        """A frame of ``user_id``'s speech that reaches the model: their talk time, the turn's last voice."""
        talk_s = self.unwritten.talk_s
        talk_s[user_id] = talk_s.get(user_id, 0.0) + FRAME_S
        self.turn_timings.voiced_frame(now_s)

    def speech_stopped(self, now_s: float) -> None:
        self._speech_stopped_at_s = now_s
        self.turn_timings.speech_stopped(now_s)

    def turn_spoken_by(self, speakers: frozenset[int], now_s: float) -> None:
        """Remember who spoke a turn (for ``/voice status``), forgetting whoever has been quiet past the window."""
        cutoff = now_s - RECENT_SPEAKER_WINDOW_S
        for user_id in [uid for uid, seen in self._recent_speakers.items() if seen < cutoff]:
            del self._recent_speakers[user_id]
        for user_id in speakers:
            self._recent_speakers[user_id] = now_s

    def answer_requested(self) -> None:
        self.figures.answered_turns += 1
        metrics.answer_requested()
        self._awaiting_first_audio = True

    def not_answered(self) -> None:
        """The turn stays as context: no answer is coming, so none is timed."""
        self.turn_timings.no_answer()
        self._awaiting_first_audio = False

    def answer_audio(self, now_s: float) -> None:
        if self._awaiting_first_audio and self._speech_stopped_at_s is not None:
            self.response_latency.add((now_s - self._speech_stopped_at_s) * 1000.0)
            self._awaiting_first_audio = False
        self.turn_timings.answer_audio(now_s)

    def first_frame_played(self, at_s: float) -> None:
        self.turn_timings.first_frame_played(at_s)

    def interrupted(self) -> None:
        self.figures.interruptions += 1

    def barge_in_ignored(self) -> None:
        self.figures.ignored_barge_ins += 1

    def reconnected(self) -> None:
        self.figures.reconnects += 1

    # -- usage -------------------------------------------------------------------------------------------------

    def usage(self, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
        """An answer's tokens and cost (``None``: the model's prices are unknown): counted for ``/voice status``
        and written to today's usage by a task of its own (its failure stays in :attr:`unwritten`)."""
        self.figures.input_tokens += input_tokens
        self.figures.output_tokens += output_tokens
        self.figures.cost_usd += cost_usd or 0.0
        self.figures.cost_known &= cost_usd is not None
        self.unwritten.input_tokens += input_tokens
        self.unwritten.output_tokens += output_tokens
        self.unwritten.cost_usd += cost_usd or 0.0
        task = asyncio.get_running_loop().create_task(self.write_usage())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def write_usage(self, elapsed_s: float | None = None) -> bool:
        """Write what is not yet in the store, with the session time up to ``elapsed_s`` when given.

        Never raises (but :class:`asyncio.CancelledError` for a cancelled caller): what could not be written stays
        in :attr:`unwritten` for the next call. A write once started finishes even if its caller is cancelled (the
        watchdog, when the session closes), so nothing is counted twice or dropped. Returns whether everything
        counted so far is written.
        """
        return await asyncio.shield(self._write(elapsed_s))

    async def settle(self) -> None:
        """Wait for the writes the answers started (each keeps what it could not write in :attr:`unwritten`), and
        for writes whose outcome is unknown, at most :data:`~bot.store.STORE_CALL_TIMEOUT_S` for those."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self._outcomes_known()

    async def _outcomes_known(self) -> None:
        if self._in_doubt:
            await asyncio.wait(set(self._in_doubt), timeout=STORE_CALL_TIMEOUT_S)

    async def _write(self, elapsed_s: float | None) -> bool:
        async with self._write_lock:
            if elapsed_s is not None and elapsed_s > self._accounted_s:
                self.unwritten.seconds += elapsed_s - self._accounted_s
                self._accounted_s = elapsed_s
            try:
                await self._write_locked()
            except Exception as error:
                _log.warning("guild %s: usage not written yet (%s); kept for the next try", self._state.guild_id, error)
                return False
            return not self.unwritten

    async def _write_locked(self) -> None:
        """Hand each pending figure to the store; what arrives meanwhile accumulates beside it, and what a failing
        call held goes back into :attr:`unwritten`."""
        pending = self.unwritten
        guild_id = self._state.guild_id
        day = self._state.today()
        counters = (pending.seconds, pending.input_tokens, pending.output_tokens, pending.cost_usd)
        if any(counters):
            pending.seconds, pending.input_tokens, pending.output_tokens, pending.cost_usd = 0.0, 0, 0, 0.0
            seconds, input_tokens, output_tokens, cost_usd = counters

            def restore_counters() -> None:
                self.unwritten.seconds += seconds
                self.unwritten.input_tokens += input_tokens
                self.unwritten.output_tokens += output_tokens
                self.unwritten.cost_usd += cost_usd

            await self._hand_over(
                self._store.add_usage(
                    guild_id,
                    day,
                    seconds=seconds,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cost_usd=cost_usd,
                ),
                restore_counters,
            )
        for user_id in list(pending.talk_s):
            talk_s = pending.talk_s.pop(user_id)

            def restore_talk(
                user_id: int = user_id, talk_s: float = talk_s, forgets: int = self._forgets[user_id]
            ) -> None:
                if self._forgets[user_id] == forgets:  # not forgotten since: put back
                    self.unwritten.talk_s[user_id] = self.unwritten.talk_s.get(user_id, 0.0) + talk_s

            await self._hand_over(self._store.add_user_usage(guild_id, day, user_id, talk_s), restore_talk)

    async def _hand_over(self, write: Awaitable[None], restore: Callable[[], None]) -> None:
        """Await one store write; if it fails, ``restore`` puts its figures back. A write whose outcome is unknown
        (it outlasted its bound while running) is followed until it ends, and restored only if it then fails."""
        try:
            await write
        except StoreOutcomeUnknown as unknown:
            task = asyncio.get_running_loop().create_task(self._follow(unknown.outcome, restore))
            self._in_doubt.add(task)
            task.add_done_callback(self._in_doubt.discard)
            raise
        except BaseException:
            restore()
            raise

    @staticmethod
    async def _follow(outcome: Awaitable[object], restore: Callable[[], None]) -> None:
        try:
            await outcome
        except Exception:
            restore()

    async def forget_member(self, user_id: int) -> None:
        """Drop ``user_id``'s talk time not yet written and their place in the recent speakers, after the write
        under way (so what it held is in the store, where the caller deletes it, or dropped here)."""
        self._recent_speakers.pop(user_id, None)
        self._forgets[user_id] += 1
        async with self._write_lock:
            await self._outcomes_known()  # a write that may still land lands before the caller deletes
            self.unwritten.talk_s.pop(user_id, None)

    # -- status --------------------------------------------------------------------------------------------------

    def recent_speakers(self) -> list[str]:
        cutoff = self._state.now() - RECENT_SPEAKER_WINDOW_S
        names = self._member_names()
        return [names.get(uid, str(uid)) for uid, seen in self._recent_speakers.items() if seen >= cutoff]

    def status_embed(
        self, *, channel_id: int, uptime_s: int, today_minutes: float, today_cost_usd: float
    ) -> discord.Embed:
        """The ``/voice status`` embed: channel, uptime, mode, speakers, latency, reconnects, tokens and cost."""
        embed = discord.Embed(title=f"🎙️ {self._state.persona.name} is listening")
        embed.add_field(name="Channel", value=f"<#{channel_id}>")
        embed.add_field(name="Uptime", value=f"{uptime_s // 60} min {uptime_s % 60} s")
        embed.add_field(name="Mode", value=texts.mode_description(self._state.mode.value))
        speakers = join_within(self.recent_speakers(), EMBED_FIELD_VALUE_CHARS)  # whole names, then "… and N more"
        embed.add_field(name="Recent speakers", value=speakers or "nobody yet")
        latency = self.response_latency.percentiles()
        embed.add_field(
            name="Answer latency",
            value=f"p50 {latency.p50_ms:.0f} ms · p95 {latency.p95_ms:.0f} ms" if latency else "no answer yet",
        )
        embed.add_field(name="Reconnects", value=str(self.figures.reconnects))
        embed.add_field(
            name="This session",
            value=f"{self.figures.input_tokens:,} in / {self.figures.output_tokens:,} out tokens · "
            + (f"${self.figures.cost_usd:.3f}" if self.figures.cost_known else texts.COST_UNKNOWN),
        )
        embed.add_field(name="Today", value=f"{today_minutes:.1f} min · ${today_cost_usd:.3f}")
        timings = self.turn_timings.summary()
        if timings:
            lines = [
                f"{SEGMENTS[name]}: p50 {stats.p50_ms:.0f} · p95 {stats.p95_ms:.0f} ms"
                for name, stats in timings.items()
            ]
            embed.add_field(name="Turn timing", value="\n".join(lines), inline=False)
        return embed
