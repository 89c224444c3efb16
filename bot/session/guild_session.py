"""One guild's live conversation: room audio -> Realtime session -> playback, plus transcripts, usage and limits.

A :class:`GuildSession` joins three parts through small protocols, so each is replaceable and the joining logic is
testable on its own:

- a :class:`VoiceLink` (the Discord voice connection: mixed 48 kHz room audio in, per-user frames, a speaker
  timeline, an audio gate);
- a :class:`Conversation` (the Realtime session: 24 kHz audio in, events out, turns labelled and answered on request);
- a :class:`Playback` (the audio source Discord's player reads; reports what was actually played).

Audio path: room frames (48 kHz stereo, 20 ms) -> :class:`~bot.audio.resample.DiscordToRealtimeResampler` ->
``conversation.push_audio``; assistant audio (24 kHz mono) -> ``playback.feed``.

A shared room (one Realtime session for everyone in the channel):

- **Labels**: each committed user turn is labelled for the model with who spoke in it (from the speaker timeline),
  and the model is kept told who is present (the roster).
- **Who gets answered** (:class:`~bot.room.listening.ListeningMode`): ``always`` answers every turn, ``name`` only turns
  that address the persona by name (others stay in the conversation as context), ``push-to-talk`` sends only the
  audio of users who hold the floor. The session, not the server, asks for each answer.
- **Barge-in** is decided here, not by the server: speech during playback interrupts only once the
  :class:`~bot.room.echo_guard.BargeInGuard` has heard a real voice for long enough (a cough or echo does not). Turns
  spoken over the bot that did not interrupt it are kept as context and not answered.
- **Privacy**: users who opted out of transcripts appear as "(someone)" with no words; users who opted out of
  listening are not sent in ``name`` and ``push-to-talk`` modes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import discord

from bot import texts
from bot.audio.level import rms_dbfs
from bot.audio.resample import DiscordToRealtimeResampler
from bot.persona import Persona
from bot.room.attribution import speaker_label
from bot.room.echo_guard import BargeInGuard
from bot.room.latency import LatencyWindow
from bot.room.listening import ListeningMode, PushToTalk, is_addressed, should_send_audio, suggest_name_mode
from bot.room.turn_timing import SEGMENTS, TurnTimings
from bot.session.limits import SessionLimits, SessionTimer, StopReason
from bot.store import GuildSettings, SettingsStore

_log = logging.getLogger(__name__)

LIMIT_CHECK_INTERVAL_S = 5.0
RECENT_SPEAKER_WINDOW_S = 120.0
#: Speech the server reports is attributed to whoever was voiced from this long before ``speech_started``.
ATTRIBUTION_LEAD_S = 0.5
#: Silence sent after the last speaker beyond the server VAD's silence duration, so it always hears the pause end.
VAD_TAIL_MARGIN_MS = 300
#: A user's frame louder than this counts as their talk time (and as the latest voiced frame of a turn).
VOICED_FLOOR_DBFS = -45.0
FRAME_S = 0.02
#: Longest wait for the spoken goodbye when a limit ends the session.
GOODBYE_WAIT_S = 8.0
GOODBYE_POLL_S = 0.05
#: Committed turns remembered until their transcript arrives.
PENDING_TURNS_KEPT = 32


class VoiceLink(Protocol):
    """The Discord side of a session."""

    @property
    def channel_id(self) -> int: ...
    def set_room_audio_handler(self, handler: Callable[[bytes], None] | None) -> None:
        """Call ``handler`` on the event loop with each mixed 20 ms 48 kHz stereo frame of the room."""

    def set_user_audio_handler(self, handler: Callable[[int, bytes], None] | None) -> None:
        """Call ``handler(user_id, pcm16)`` on the event loop with each decoded frame of each speaker."""

    def set_audio_gate(self, gate: Callable[[int], bool] | None) -> None:
        """Only users for whom ``gate(user_id)`` holds reach the room stream."""

    def set_silence_tail_ms(self, tail_ms: float) -> None:
        """How long the room stream continues in silence after the last speaker."""

    def speakers_between(self, start_s: float, end_s: float) -> set[int]:
        """User ids voiced between two ``time.monotonic()`` instants."""

    def member_names(self) -> Mapping[int, str]: ...
    def humans_present(self) -> int: ...
    def human_names(self) -> list[str]:
        """Display names of the humans in the channel, sorted."""

    async def move_to(self, channel: discord.VoiceChannel) -> None: ...
    async def disconnect(self) -> None: ...


class Playback(Protocol):
    """The audio source the Discord player reads (thread-safe on its own)."""

    def feed(self, item_id: str, pcm16_24k_mono: bytes) -> None: ...
    def clear(self) -> dict[str, float]:
        """Drop everything not yet played; returns ``{item_id: ms actually played}``."""

    @property
    def is_playing(self) -> bool: ...
    def set_audio_started_handler(self, handler: Callable[[str, float], None] | None) -> None:
        """Call ``handler(item_id, monotonic_s)`` on the sending thread when an answer's first frame goes out."""


class Conversation(Protocol):
    """The Realtime side of a session."""

    async def push_audio(self, pcm16_24k_mono: bytes) -> None: ...
    async def send_text(self, text: str) -> None: ...
    async def interrupt(self, played_ms: Mapping[str, float]) -> None: ...
    async def label_turn(self, item_id: str, previous_item_id: str | None, label: str) -> None: ...
    async def respond(self) -> None: ...
    async def set_roster(self, names: Sequence[str]) -> None: ...
    async def reset(self) -> None: ...
    async def apply_settings(self, settings: GuildSettings, persona: Persona) -> None: ...
    async def close(self) -> None: ...


@dataclass
class SessionFigures:
    """Counters shown by ``/voice status``."""

    reconnects: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    turns: int = 0
    answered_turns: int = 0
    interruptions: int = 0
    ignored_barge_ins: int = 0


@dataclass(slots=True)
class _Turn:
    """A committed user turn waiting for its transcript."""

    speakers: frozenset[int]
    awaiting_name: bool


class GuildSession:
    """One guild's conversation in one voice channel. Create, :meth:`start`; end with :meth:`close`."""

    def __init__(
        self,
        *,
        guild_id: int,
        persona: Persona,
        settings: GuildSettings,
        voice: VoiceLink,
        playback: Playback,
        conversation: Conversation,
        store: SettingsStore,
        limits: SessionLimits,
        on_end: Callable[[GuildSession, str], None],
        post: Callable[[str], None] | None = None,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
        now: Callable[[], float] = time.monotonic,
        today: Callable[[], str] = lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
    ) -> None:
        self._guild_id = guild_id
        self._persona = persona
        self.settings = settings
        self.voice = voice
        self.playback = playback
        self.conversation = conversation
        self.store = store
        self._on_end = on_end
        self._post = post
        self._closers = tuple(closers)
        self._now = now
        self._today = today
        self._resampler = DiscordToRealtimeResampler()
        self._timer = SessionTimer(limits, started_at_s=now())
        self._day = today()
        self._used_today_before_s = store.usage(guild_id, self._day).seconds
        self._accounted_s = 0.0
        self.figures = SessionFigures()
        self.response_latency = LatencyWindow()
        self.turn_timings = TurnTimings()
        self.guard = BargeInGuard()
        self.push_to_talk = PushToTalk()
        self._privacy = store.opted_out(guild_id)
        self._speech_started_at_s: float | None = None
        self._speech_stopped_at_s: float | None = None
        self._awaiting_first_audio = False
        self._interrupted_this_turn = False
        self._busy_at_speech_start = False
        self._turns: OrderedDict[str, _Turn] = OrderedDict()
        self._recent_speakers: dict[int, float] = {}
        self._talk_ms: dict[int, float] = {}
        self._roster: tuple[str, ...] | None = None
        self._transcript_notice_posted = False
        self._name_mode_tip_posted = False
        self._closed = False
        self.goodbye_wait_s = GOODBYE_WAIT_S
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limit_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- identity ------------------------------------------------------------------------------------------------

    @property
    def guild_id(self) -> int:
        return self._guild_id

    @property
    def channel_id(self) -> int:
        return self.voice.channel_id

    @property
    def persona(self) -> Persona:
        return self._persona

    @property
    def mode(self) -> ListeningMode:
        return ListeningMode.parse(self.settings.mode)

    # -- life cycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start listening, the roster and the limit watchdog (the links are already connected)."""
        self._loop = asyncio.get_running_loop()
        self.voice.set_silence_tail_ms(self.settings.silence_ms + VAD_TAIL_MARGIN_MS)
        self.voice.set_audio_gate(self._may_send)
        self.voice.set_user_audio_handler(self._on_user_frame)
        self.voice.set_room_audio_handler(self._on_room_frame)
        self.playback.set_audio_started_handler(self._audio_started_on_player_thread)
        self._limit_task = self._loop.create_task(self._watch_limits(), name=f"limits-{self.guild_id}")
        self._announce_transcripts()
        self.on_presence_changed()

    async def close(self, reason: str) -> None:
        """Stop listening and playing, close the Realtime session, leave the channel, record usage. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.voice.set_room_audio_handler(None)
        self.voice.set_user_audio_handler(None)
        self.playback.set_audio_started_handler(None)
        if self._limit_task is not None and self._limit_task is not asyncio.current_task():
            self._limit_task.cancel()
        self.playback.clear()
        self._record_usage()
        for step in (self.conversation.close, self.voice.disconnect, *self._closers):
            try:
                await step()
            except Exception:
                _log.exception("guild %s: error while closing (%s)", self.guild_id, reason)
        _log.info("guild %s: session closed (%s)", self.guild_id, reason)

    async def end(self, reason: StopReason) -> None:
        """End the session on its own (limits, alone): say why (posted, and spoken when someone is there to hear
        it), close, and tell the manager."""
        notice = texts.session_ended(reason)
        self._notify(notice)
        if reason is not StopReason.ALONE and not self._closed:
            await self._say_goodbye(notice)
        await self.close(reason.value)
        self._on_end(self, reason.value)

    async def _say_goodbye(self, notice: str) -> None:
        """Have the persona say ``notice`` and let it play out, for at most :attr:`goodbye_wait_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.goodbye_wait_s
        try:
            await self.conversation.send_text(texts.goodbye_prompt(notice))
        except Exception:
            _log.exception("guild %s: the spoken goodbye could not be asked for", self.guild_id)
            return
        started = False
        while loop.time() < deadline:
            await asyncio.sleep(GOODBYE_POLL_S)
            playing = self.playback.is_playing
            if started and not playing:
                return
            started = started or playing

    async def move_to(self, channel: discord.VoiceChannel) -> None:
        await self.voice.move_to(channel)
        self.on_presence_changed()

    async def reset(self, persona: Persona | None = None) -> None:
        """A fresh conversation in the same channel, as ``persona`` when given (a changed ``/persona set``)."""
        self.playback.clear()
        self._turns.clear()
        if persona is not None and persona != self._persona:
            self._persona = persona
            await self.conversation.apply_settings(self.settings, persona)
        await self.conversation.reset()
        self._roster = None
        self.on_presence_changed()

    async def say(self, text: str) -> None:
        await self.conversation.send_text(text)

    async def apply_settings(self, settings: GuildSettings) -> None:
        """New settings take effect at once: mode, interruptions, VAD, voice, transcripts."""
        self.settings = settings
        self.voice.set_silence_tail_ms(settings.silence_ms + VAD_TAIL_MARGIN_MS)
        if self.mode is not ListeningMode.NAME:
            for turn in self._turns.values():
                turn.awaiting_name = False
        self._announce_transcripts()
        await self.conversation.apply_settings(settings, self.persona)

    def refresh_privacy(self) -> None:
        """Re-read the per-user privacy choices (after ``/voice privacy``)."""
        self._privacy = self.store.opted_out(self.guild_id)

    def toggle_push_to_talk(self, user_id: int) -> bool:
        """Flip ``user_id``'s push-to-talk; returns whether their audio is now sent."""
        return self.push_to_talk.toggle(user_id)

    # -- audio in ------------------------------------------------------------------------------------------------

    def _may_send(self, user_id: int) -> bool:
        """The audio gate: whose audio reaches the model."""
        mode = self.mode
        if mode is not ListeningMode.ALWAYS and self._privacy.get(user_id, _NO_OPT_OUT).no_listen:
            return False
        return should_send_audio(mode, user_id, self.push_to_talk)

    def _on_user_frame(self, user_id: int, pcm16_48k_stereo: bytes) -> None:
        """Each decoded frame of each user, on the event loop: levels for the guard, talk time, turn timing."""
        if self._closed:
            return
        now_s = self._now()
        level_dbfs = rms_dbfs(pcm16_48k_stereo)
        self.guard.set_playing(self.playback.is_playing)
        self.guard.feed(user_id, level_dbfs, now_s)
        if level_dbfs > VOICED_FLOOR_DBFS and self._may_send(user_id):
            self._talk_ms[user_id] = self._talk_ms.get(user_id, 0.0) + FRAME_S * 1000
            self.turn_timings.voiced_frame(now_s)
        if self.guard.armed and self.guard.should_interrupt(now_s):
            self._barge_in()

    def _on_room_frame(self, frame_48k_stereo: bytes) -> None:
        """A mixed 20 ms room frame, on the event loop: resample and push without waiting."""
        if self._closed:
            return
        pcm = self._resampler.process(frame_48k_stereo)
        if pcm:
            self._spawn(self.conversation.push_audio(pcm))

    # -- events from the conversation ------------------------------------------------------------------------------

    def on_assistant_audio(self, item_id: str, pcm16_24k_mono: bytes) -> None:
        now_s = self._now()
        if self._awaiting_first_audio and self._speech_stopped_at_s is not None:
            self.response_latency.add((now_s - self._speech_stopped_at_s) * 1000.0)
            self._awaiting_first_audio = False
        self.turn_timings.answer_audio(now_s)
        self.guard.set_playing(True)
        self.playback.feed(item_id, pcm16_24k_mono)

    def on_speech_started(self) -> None:
        now_s = self._now()
        self._speech_started_at_s = now_s
        self._interrupted_this_turn = False
        self._busy_at_speech_start = self.playback.is_playing
        if not self.playback.is_playing:
            self.guard.set_playing(False)
            return
        if not self.settings.interruptions:
            return
        self.guard.arm(now_s)
        if self.guard.should_interrupt(now_s):  # the look-back may already hold enough voice
            self._barge_in()

    def _barge_in(self) -> None:
        """A real interruption: stop at once, and truncate the answer at what people heard."""
        self.guard.disarm()
        if not self.playback.is_playing:
            return
        played = self.playback.clear()
        self.guard.set_playing(False)
        self._interrupted_this_turn = True
        self.figures.interruptions += 1
        self._spawn(self.conversation.interrupt(played))

    def on_speech_stopped(self) -> None:
        now_s = self._now()
        self._speech_stopped_at_s = now_s
        self.turn_timings.speech_stopped(now_s)
        if self.guard.armed:  # the speech ended before it counted as an interruption: a cough, an echo
            self.guard.disarm()
            self.figures.ignored_barge_ins += 1

    def on_turn_committed(self, item_id: str, previous_item_id: str | None) -> None:
        """The server committed a user turn: label it with its speakers, then answer it or keep it as context."""
        speakers = frozenset(self._speakers_of_turn())
        for user_id in speakers:
            self._recent_speakers[user_id] = self._now()
        label = speaker_label(speakers, self.voice.member_names())
        self._spawn(self.conversation.label_turn(item_id, previous_item_id, label))
        spoken_over = self._busy_at_speech_start and not self._interrupted_this_turn
        answer_now = not spoken_over and self.mode is not ListeningMode.NAME
        awaiting_name = not spoken_over and self.mode is ListeningMode.NAME
        self._turns[item_id] = _Turn(speakers, awaiting_name)
        while len(self._turns) > PENDING_TURNS_KEPT:
            self._turns.popitem(last=False)
        if answer_now:
            self._answer()
        elif not awaiting_name:
            self.turn_timings.no_answer()
            self._awaiting_first_audio = False

    def on_user_transcript(self, item_id: str, text: str) -> None:
        self.figures.turns += 1
        turn = self._turns.pop(item_id, None)
        speakers = turn.speakers if turn is not None else frozenset(self._speakers_of_turn())
        if turn is not None and turn.awaiting_name:
            if is_addressed(text, (self.persona.name, *self.persona.aliases)):
                self._answer()
            else:
                self.turn_timings.no_answer()
                self._awaiting_first_audio = False
        if self.settings.transcripts:
            hidden = {uid for uid in speakers if self._privacy.get(uid, _NO_OPT_OUT).no_transcript}
            label = speaker_label(speakers, self.voice.member_names(), hidden=hidden)
            self._notify(texts.transcript_line(label, text) if not hidden else texts.hidden_turn_line())

    def _answer(self) -> None:
        self.figures.answered_turns += 1
        self._awaiting_first_audio = True
        self._spawn(self.conversation.respond())

    def on_assistant_transcript(self, text: str) -> None:
        if self.settings.transcripts:
            self._notify(texts.transcript_line(self.persona.name, text))

    def on_tool_call(self, name: str, arguments: str, output: str) -> None:
        if self.settings.transcripts:
            self._notify(texts.tool_call_line(name, arguments, output))

    def on_usage(self, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        self.figures.input_tokens += input_tokens
        self.figures.output_tokens += output_tokens
        self.figures.cost_usd += cost_usd
        self.store.add_usage(
            self.guild_id, self._today(), input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost_usd
        )

    def on_reconnected(self) -> None:
        self.figures.reconnects += 1

    def on_fatal_error(self, message: str) -> None:
        """The Realtime session cannot go on (bad key, no quota): tell the channel and end the session."""
        self._notify(texts.REALTIME_FAILED.format(reason=message))
        self._spawn(self._end_after_failure("realtime failed", message))

    def on_playback_failed(self) -> None:
        """The bot's voice stopped for good on an error (the sender gave up): say so and end, rather than sit
        in the channel unable to answer."""
        if self._closed:
            return
        self._notify(texts.PLAYBACK_FAILED)
        self._spawn(self._end_after_failure("playback failed", "the voice connection kept failing"))

    async def _end_after_failure(self, what: str, detail: str) -> None:
        await self.close(f"{what}: {detail}")
        self._on_end(self, what)

    def _audio_started_on_player_thread(self, _item_id: str, at_s: float) -> None:
        """Player thread: an answer's first frame went to Discord. Hop to the loop; nothing else here."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.turn_timings.first_frame_played, at_s)

    def _speakers_of_turn(self) -> set[int]:
        start = (self._speech_started_at_s or self._now()) - ATTRIBUTION_LEAD_S
        end = self._speech_stopped_at_s if self._speech_stopped_at_s is not None else self._now()
        return self.voice.speakers_between(start, max(end, start))

    # -- presence and limits ------------------------------------------------------------------------------------------

    def on_presence_changed(self) -> None:
        """Someone joined or left the channel: update the alone timer and the model's roster, and free the state of
        whoever left (their push-to-talk floor, what the barge-in guard learnt of them)."""
        if self._closed:
            return
        present = self.voice.member_names().keys()
        self.push_to_talk.retain(present)
        self.guard.retain(present)
        humans = self.voice.humans_present()
        self._timer.set_alone(humans == 0, self._now())
        roster = tuple(self.voice.human_names())
        if roster != self._roster:
            self._roster = roster
            self._spawn(self.conversation.set_roster(roster))
        if not self._name_mode_tip_posted and suggest_name_mode(humans, self.mode):
            self._name_mode_tip_posted = True
            self._notify(texts.name_mode_tip(self.persona.name))

    def check_limits(self) -> StopReason | None:
        self._timer.set_alone(self.voice.humans_present() == 0, self._now())
        return self._timer.check(self._now(), self._used_today_before_s)

    async def _watch_limits(self) -> None:
        while not self._closed:
            await asyncio.sleep(LIMIT_CHECK_INTERVAL_S)
            self._record_usage()
            reason = self.check_limits()
            if reason is not None:
                await self.end(reason)
                return

    def _record_usage(self) -> None:
        """Add the session time and per-user talk time not yet counted to today's usage."""
        elapsed = self._timer.elapsed_s(self._now())
        delta = elapsed - self._accounted_s
        if delta > 0:
            self.store.add_usage(self.guild_id, self._today(), seconds=delta)
            self._accounted_s = elapsed
        talk, self._talk_ms = self._talk_ms, {}
        for user_id, talk_ms in talk.items():
            self.store.add_user_usage(self.guild_id, self._today(), user_id, talk_ms / 1000.0)

    # -- output to the text channel ------------------------------------------------------------------------------

    def _announce_transcripts(self) -> None:
        if self.settings.transcripts and not self._transcript_notice_posted:
            self._transcript_notice_posted = True
            self._notify(texts.TRANSCRIPTS_NOTICE)

    def _notify(self, message: str) -> None:
        if self._post is not None:
            try:
                self._post(message)
            except Exception:
                _log.exception("guild %s: posting to the text channel failed", self.guild_id)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("guild %s: conversation call failed", self.guild_id, exc_info=task.exception())

    # -- status --------------------------------------------------------------------------------------------------

    def recent_speakers(self) -> list[str]:
        cutoff = self._now() - RECENT_SPEAKER_WINDOW_S
        names = self.voice.member_names()
        return [names.get(uid, str(uid)) for uid, seen in self._recent_speakers.items() if seen >= cutoff]

    def status_embed(self, store: SettingsStore) -> discord.Embed:
        """The ``/voice status`` embed: channel, uptime, mode, speakers, latency, reconnects, tokens and cost."""
        uptime_s = int(self._timer.elapsed_s(self._now()))
        today = store.usage(self.guild_id, self._today())
        embed = discord.Embed(title=f"🎙️ {self.persona.name} is listening")
        embed.add_field(name="Channel", value=f"<#{self.channel_id}>")
        embed.add_field(name="Uptime", value=f"{uptime_s // 60} min {uptime_s % 60} s")
        embed.add_field(name="Mode", value=texts.mode_description(self.mode.value))
        embed.add_field(name="Recent speakers", value=", ".join(self.recent_speakers()) or "nobody yet")
        latency = self.response_latency.percentiles()
        embed.add_field(
            name="Answer latency",
            value=f"p50 {latency.p50_ms:.0f} ms · p95 {latency.p95_ms:.0f} ms" if latency else "no answer yet",
        )
        embed.add_field(name="Reconnects", value=str(self.figures.reconnects))
        embed.add_field(
            name="This session",
            value=f"{self.figures.input_tokens:,} in / {self.figures.output_tokens:,} out tokens · "
            f"${self.figures.cost_usd:.3f}",
        )
        embed.add_field(name="Today", value=f"{today.minutes:.1f} min · ${today.cost_usd:.3f}")
        timings = self.turn_timings.summary()
        if timings:
            lines = [
                f"{SEGMENTS[name]}: p50 {stats.p50_ms:.0f} · p95 {stats.p95_ms:.0f} ms"
                for name, stats in timings.items()
            ]
            embed.add_field(name="Turn timing", value="\n".join(lines), inline=False)
        return embed


@dataclass(frozen=True, slots=True)
class _NoOptOut:
    no_transcript: bool = False
    no_listen: bool = False


_NO_OPT_OUT = _NoOptOut()
