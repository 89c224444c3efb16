"""One guild's live conversation: room audio -> Realtime session -> playback, plus transcripts, usage and limits.

A :class:`GuildSession` joins three parts through small protocols, so each is replaceable and the joining logic is
testable on its own:

- a :class:`VoiceLink` (the Discord voice connection: mixed 48 kHz room audio in, a speaker timeline, playback);
- a :class:`Conversation` (the Realtime session: 24 kHz audio in, events out);
- a :class:`Playback` (the audio source Discord's player reads; reports what was actually played).

Audio path: room frames (48 kHz stereo, 20 ms) -> :class:`~bot.audio.resample.DiscordToRealtimeResampler` ->
``conversation.push_audio``; assistant audio (24 kHz mono) -> ``playback.feed``. Barge-in: when the server hears
speech while the bot is talking, playback is cleared at once and the conversation truncated at what was played.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import discord

from bot import texts
from bot.attribution import speaker_label
from bot.audio.resample import DiscordToRealtimeResampler
from bot.latency import LatencyWindow
from bot.limits import SessionLimits, SessionTimer, StopReason
from bot.persona import Persona
from bot.store import GuildSettings, SettingsStore

_log = logging.getLogger(__name__)

LIMIT_CHECK_INTERVAL_S = 5.0
RECENT_SPEAKER_WINDOW_S = 120.0
#: Silence sent after the last speaker beyond the server VAD's silence duration, so it always hears the pause end.
VAD_TAIL_MARGIN_MS = 300
#: Speech the server reports is attributed to whoever was voiced from this long before ``speech_started``.
ATTRIBUTION_LEAD_S = 0.5


class VoiceLink(Protocol):
    """The Discord side of a session."""

    @property
    def channel_id(self) -> int: ...
    def set_room_audio_handler(self, handler: Callable[[bytes], None] | None) -> None:
        """Call ``handler`` on the event loop with each mixed 20 ms 48 kHz stereo frame of the room."""

    def set_silence_tail_ms(self, tail_ms: float) -> None:
        """How long the room stream continues in silence after the last speaker."""

    def speakers_between(self, start_s: float, end_s: float) -> set[int]:
        """User ids voiced between two ``time.monotonic()`` instants."""

    def member_names(self) -> Mapping[int, str]: ...
    def humans_present(self) -> int: ...
    async def move_to(self, channel: discord.VoiceChannel) -> None: ...
    async def disconnect(self) -> None: ...


class Playback(Protocol):
    """The audio source the Discord player reads (thread-safe on its own)."""

    def feed(self, item_id: str, pcm16_24k_mono: bytes) -> None: ...
    def clear(self) -> dict[str, float]:
        """Drop everything not yet played; returns ``{item_id: ms actually played}``."""

    @property
    def is_playing(self) -> bool: ...


class Conversation(Protocol):
    """The Realtime side of a session."""

    async def push_audio(self, pcm16_24k_mono: bytes) -> None: ...
    async def send_text(self, text: str) -> None: ...
    async def interrupt(self, played_ms: Mapping[str, float]) -> None: ...
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


class GuildSession:
    """One guild's conversation in one voice channel. Create with :meth:`start`; end with :meth:`close`."""

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
        self._speech_started_at_s: float | None = None
        self._speech_stopped_at_s: float | None = None
        self._awaiting_first_audio = False
        self._recent_speakers: dict[int, float] = {}
        self._closed = False
        self._limit_task: asyncio.Task[None] | None = None
        self._audio_tasks: set[asyncio.Task[None]] = set()

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

    # -- life cycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start listening and the limit watchdog (the links are already connected)."""
        self.voice.set_silence_tail_ms(self.settings.silence_ms + VAD_TAIL_MARGIN_MS)
        self.voice.set_room_audio_handler(self._on_room_frame)
        self._limit_task = asyncio.get_running_loop().create_task(self._watch_limits(), name=f"limits-{self.guild_id}")

    async def close(self, reason: str) -> None:
        """Stop listening and playing, close the Realtime session, leave the channel, record usage. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.voice.set_room_audio_handler(None)
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
        """End the session on its own (limits, alone): say why, close, and tell the manager."""
        self._notify(texts.session_ended(reason))
        await self.close(reason.value)
        self._on_end(self, reason.value)

    async def move_to(self, channel: discord.VoiceChannel) -> None:
        await self.voice.move_to(channel)

    async def reset(self, persona: Persona | None = None) -> None:
        """A fresh conversation in the same channel, as ``persona`` when given (a changed ``/persona set``)."""
        self.playback.clear()
        if persona is not None and persona != self._persona:
            self._persona = persona
            await self.conversation.apply_settings(self.settings, persona)
        await self.conversation.reset()

    async def say(self, text: str) -> None:
        await self.conversation.send_text(text)

    async def apply_settings(self, settings: GuildSettings) -> None:
        self.settings = settings
        self.voice.set_silence_tail_ms(settings.silence_ms + VAD_TAIL_MARGIN_MS)
        await self.conversation.apply_settings(settings, self.persona)

    # -- audio in ------------------------------------------------------------------------------------------------

    def _on_room_frame(self, frame_48k_stereo: bytes) -> None:
        """A mixed 20 ms room frame, on the event loop: resample and push without waiting."""
        if self._closed:
            return
        pcm = self._resampler.process(frame_48k_stereo)
        if pcm:
            task = asyncio.get_running_loop().create_task(self.conversation.push_audio(pcm))
            self._audio_tasks.add(task)
            task.add_done_callback(self._audio_tasks.discard)

    # -- events from the conversation ------------------------------------------------------------------------------

    def on_assistant_audio(self, item_id: str, pcm16_24k_mono: bytes) -> None:
        if self._awaiting_first_audio and self._speech_stopped_at_s is not None:
            self.response_latency.add((self._now() - self._speech_stopped_at_s) * 1000.0)
            self._awaiting_first_audio = False
        self.playback.feed(item_id, pcm16_24k_mono)

    def on_speech_started(self) -> None:
        self._speech_started_at_s = self._now()
        if self.playback.is_playing and self.settings.interruptions:
            played = self.playback.clear()
            task = asyncio.get_running_loop().create_task(self.conversation.interrupt(played))
            self._audio_tasks.add(task)
            task.add_done_callback(self._audio_tasks.discard)

    def on_speech_stopped(self) -> None:
        self._speech_stopped_at_s = self._now()
        self._awaiting_first_audio = True

    def on_user_transcript(self, text: str) -> None:
        self.figures.turns += 1
        start = (self._speech_started_at_s or self._now()) - ATTRIBUTION_LEAD_S
        end = self._speech_stopped_at_s or self._now()
        speakers = self.voice.speakers_between(start, max(end, start))
        for user_id in speakers:
            self._recent_speakers[user_id] = self._now()
        if self.settings.transcripts:
            label = speaker_label(speakers, self.voice.member_names())
            self._notify(texts.transcript_line(label, text))

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
        task = asyncio.get_running_loop().create_task(self._end_after_failure(message))
        self._audio_tasks.add(task)
        task.add_done_callback(self._audio_tasks.discard)

    async def _end_after_failure(self, message: str) -> None:
        await self.close(f"realtime failed: {message}")
        self._on_end(self, "realtime failed")

    # -- presence and limits ------------------------------------------------------------------------------------------

    def on_presence_changed(self) -> None:
        """Someone joined or left the channel: update the alone timer."""
        self._timer.set_alone(self.voice.humans_present() == 0, self._now())

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
        """Add the session time not yet counted to today's usage."""
        elapsed = self._timer.elapsed_s(self._now())
        delta = elapsed - self._accounted_s
        if delta > 0:
            self.store.add_usage(self.guild_id, self._today(), seconds=delta)
            self._accounted_s = elapsed

    # -- output to the text channel ------------------------------------------------------------------------------

    def _notify(self, message: str) -> None:
        if self._post is not None:
            try:
                self._post(message)
            except Exception:
                _log.exception("guild %s: posting to the text channel failed", self.guild_id)

    # -- status --------------------------------------------------------------------------------------------------

    def recent_speakers(self) -> list[str]:
        cutoff = self._now() - RECENT_SPEAKER_WINDOW_S
        names = self.voice.member_names()
        return [names.get(uid, str(uid)) for uid, seen in self._recent_speakers.items() if seen >= cutoff]

    def status_embed(self, store: SettingsStore) -> discord.Embed:
        """The ``/voice status`` embed: channel, uptime, recent speakers, latency, reconnects, tokens and cost."""
        uptime_s = int(self._timer.elapsed_s(self._now()))
        today = store.usage(self.guild_id, self._today())
        embed = discord.Embed(title=f"🎙️ {self.persona.name} is listening")
        embed.add_field(name="Channel", value=f"<#{self.channel_id}>")
        embed.add_field(name="Uptime", value=f"{uptime_s // 60} min {uptime_s % 60} s")
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
        return embed
