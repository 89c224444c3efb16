"""One guild's live conversation: room audio -> Realtime session -> playback, joined from four parts.

A :class:`GuildSession` joins three links through small protocols (:mod:`bot.session.protocols`): a
:class:`~bot.session.protocols.VoiceLink` (the Discord voice connection), a
:class:`~bot.session.protocols.Conversation` (the Realtime session) and a :class:`~bot.session.protocols.Playback`
(the audio source Discord's sender reads). Its work is split by responsibility, each part testable alone:

- :class:`~bot.session.audio_routing.AudioRouting` -- room frames to the conversation, answers to playback;
- :class:`~bot.session.turns.TurnTaking` -- labels, listening modes, barge-in, asking for answers;
- :class:`~bot.session.record.SessionRecord` -- transcripts, notices, usage, figures and timings;
- :class:`~bot.session.lifetime.SessionLifetime` -- limits, the spoken goodbye, closing.

The session itself only routes the conversation's events (:class:`~bot.realtime.connection.ConversationListener`)
and the commands (:class:`~bot.session.registry.Session`) to those parts, and shares one
:class:`~bot.session.state.SessionState` (settings, persona, privacy, clock) between them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import discord

from bot import texts
from bot.persona import Persona
from bot.room.latency import LatencyWindow
from bot.room.listening import ListeningMode, suggest_name_mode
from bot.room.turn_timing import TurnTimings
from bot.session.audio_routing import AudioRouting
from bot.session.lifetime import SessionLifetime
from bot.session.limits import SessionLimits, StopReason
from bot.session.protocols import Conversation, Playback, VoiceLink
from bot.session.record import SessionFigures, SessionRecord
from bot.session.state import SessionState, TaskSet
from bot.session.turns import TurnTaking
from bot.store import GuildSettings, Privacy, SettingsStore

_log = logging.getLogger(__name__)


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
        privacy: Mapping[int, Privacy],
        used_today_before_s: float,
        limits: SessionLimits,
        on_end: Callable[[GuildSession, str], None],
        post: Callable[[str], None] | None = None,
        consent_notice: str | None = None,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
        now: Callable[[], float] = time.monotonic,
        today: Callable[[], str] = lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
    ) -> None:
        """
        Args:
            privacy: The members' privacy choices (``await store.opted_out(guild_id)``), read before the session.
            used_today_before_s: The guild's usage today before this session (``await store.usage(...)``).
        """
        self.state = SessionState(
            guild_id=guild_id,
            persona=persona,
            settings=settings,
            now=now,
            today=today,
            privacy=privacy,
        )
        self.voice = voice
        self.playback = playback
        self.conversation = conversation
        self.store = store
        self._on_end = on_end
        self._consent_notice = consent_notice
        self._roster: tuple[str, ...] | None = None
        self.tasks = TaskSet(guild_id)
        self.record = SessionRecord(self.state, store, member_names=voice.member_names, post=post)
        self.audio = AudioRouting(self.state, voice, playback, conversation, spawn=self.tasks.spawn)
        self.turns = TurnTaking(self.state, voice, playback, conversation, self.record, spawn=self.tasks.spawn)
        self.lifetime = SessionLifetime(
            self.state,
            self.record,
            playback,
            conversation,
            limits=limits,
            used_today_before_s=used_today_before_s,
            releases=(conversation.close, voice.disconnect, *closers),
            detach=self.audio.detach,
        )

    # -- identity ------------------------------------------------------------------------------------------------

    @property
    def guild_id(self) -> int:
        return self.state.guild_id

    @property
    def channel_id(self) -> int:
        return self.voice.channel_id

    @property
    def persona(self) -> Persona:
        return self.state.persona

    @property
    def settings(self) -> GuildSettings:
        return self.state.settings

    @property
    def mode(self) -> ListeningMode:
        return self.state.mode

    @property
    def figures(self) -> SessionFigures:
        return self.record.figures

    @property
    def response_latency(self) -> LatencyWindow:
        return self.record.response_latency

    @property
    def turn_timings(self) -> TurnTimings:
        return self.record.turn_timings

    @property
    def goodbye_wait_s(self) -> float:
        return self.lifetime.goodbye_wait_s

    @goodbye_wait_s.setter
    def goodbye_wait_s(self, value: float) -> None:
        self.lifetime.goodbye_wait_s = value

    # -- life cycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start listening, the roster and the limit watchdog (the links are already connected)."""
        self.audio.attach(
            gate=self.turns.may_send,
            on_user_level=self.turns.hear,
            on_first_frame_played=self.record.first_frame_played,
        )
        self.lifetime.start(self.end)
        if self._consent_notice is not None:  # everyone is told the bot listens, where the audio goes, how to opt out
            self.record.consent(self._consent_notice)
        self.record.announce_transcripts()
        self.on_presence_changed()

    async def close(self, reason: str) -> None:
        """Stop listening and playing, close the Realtime session, leave the channel, record usage. Idempotent."""
        await self.lifetime.close(reason)

    async def end(self, reason: StopReason) -> None:
        """End the session on its own (limits, alone): say why (posted, and spoken when someone is there to hear
        it), close, and tell the manager."""
        notice = texts.session_ended(reason)
        self.record.notify(notice)
        if reason is not StopReason.ALONE and not self.state.closed:
            await self.lifetime.say_goodbye(notice)
        await self.close(reason.value)
        self._on_end(self, reason.value)

    async def announce(self, notice: str, wait_s: float) -> None:
        """Post ``notice`` and have the persona say it (when someone is there to hear it), waiting at most
        ``wait_s`` for it to play: before a restart."""
        self.record.notify(notice)
        if self.state.closed or self.voice.humans_present() == 0:
            return
        try:
            await asyncio.wait_for(self.lifetime.say_goodbye(notice), wait_s)
        except TimeoutError:
            _log.info("guild %s: the notice was cut short after %.1f s", self.guild_id, wait_s)

    def check_limits(self) -> StopReason | None:
        self.lifetime.set_alone(self.voice.humans_present() == 0)
        return self.lifetime.check()

    # -- commands ------------------------------------------------------------------------------------------------

    async def reset(self, persona: Persona | None = None) -> None:
        """A fresh conversation in the same channel, as ``persona`` when given (a changed ``/persona-admin set``)."""
        self.playback.clear()
        self.turns.forget_pending()
        if persona is not None and persona != self.state.persona:
            self.state.persona = persona
            await self.conversation.apply_settings(self.state.settings, persona)
        await self.conversation.reset()
        self._roster = None
        self.on_presence_changed()

    async def say(self, text: str) -> None:
        await self.conversation.send_text(text)

    async def apply_settings(self, settings: GuildSettings) -> None:
        """New settings take effect at once: mode, interruptions, VAD, voice, transcripts."""
        self.state.settings = settings
        self.audio.settings_changed()
        self.turns.settings_changed()
        self.record.announce_transcripts()
        await self.conversation.apply_settings(settings, self.state.persona)

    async def refresh_privacy(self) -> None:
        """Re-read the per-user privacy choices (after ``/voice privacy``)."""
        self.state.privacy = await self.store.opted_out(self.guild_id)

    async def forget_member(self, user_id: int) -> None:
        """A member deletes their data (``/voice forget-me``): drop their unwritten talk time and their place in
        the recent speakers, once the usage write under way has ended (so the caller's delete comes after it)."""
        await self.record.forget_member(user_id)

    def toggle_push_to_talk(self, user_id: int) -> bool:
        """Flip ``user_id``'s push-to-talk; returns whether their audio is now sent."""
        return self.turns.toggle_push_to_talk(user_id)

    def on_presence_changed(self) -> None:
        """Someone joined or left the channel: update the alone timer and the model's roster, and free the state of
        whoever left (their push-to-talk floor, what the barge-in guard learnt of them)."""
        if self.state.closed:
            return
        self.turns.retain(self.voice.member_names().keys())
        humans = self.voice.humans_present()
        self.lifetime.set_alone(humans == 0)
        roster = tuple(self.voice.human_names())
        if roster != self._roster:
            self._roster = roster
            self.tasks.spawn(self.conversation.set_roster(roster))
        if suggest_name_mode(humans, self.mode):
            self.record.suggest_name_mode()

    # -- events from the conversation (ConversationListener) -------------------------------------------------------

    def on_assistant_audio(self, item_id: str, pcm16_24k_mono: bytes) -> None:
        self.record.answer_audio(self.state.now())
        self.turns.answer_audio_arrived()
        self.audio.play(item_id, pcm16_24k_mono)

    def on_speech_started(self) -> None:
        self.turns.speech_started()

    def on_speech_stopped(self) -> None:
        self.turns.speech_stopped()

    def on_turn_committed(self, item_id: str, previous_item_id: str | None) -> None:
        self.turns.turn_committed(item_id, previous_item_id)

    def on_user_transcript(self, item_id: str, text: str) -> None:
        self.record.user_transcript(self.turns.user_transcript(item_id, text), text)

    def on_assistant_transcript(self, text: str) -> None:
        self.record.assistant_transcript(text)

    def on_tool_call(self, name: str, arguments: str, output: str) -> None:
        self.record.tool_call(name, arguments, output)

    def on_usage(self, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
        """Count one response's tokens; ``cost_usd`` is ``None`` when the model's prices are unknown."""
        self.record.usage(input_tokens, output_tokens, cost_usd)

    def on_reconnected(self) -> None:
        self.record.reconnected()

    def on_fatal_error(self, message: str) -> None:
        """The Realtime session cannot go on (bad key, no quota): tell the channel and end the session."""
        self.record.notify(texts.REALTIME_FAILED.format(reason=message))
        self.tasks.spawn(self._end_after_failure("realtime failed", message))

    def on_answer_failed(self, message: str) -> None:
        """An answer did not come (the server never started it, or it failed); the session goes on listening."""
        self.record.notify(texts.ANSWER_FAILED.format(reason=message))

    def on_settings_rejected(self, message: str) -> None:
        """The Realtime server refused new settings; the previous ones stay in force."""
        self.record.notify(texts.SETTINGS_REFUSED.format(reason=message))

    def on_playback_failed(self) -> None:
        """The bot's voice stopped for good on an error (the sender gave up): say so and end, rather than sit
        in the channel unable to answer."""
        if self.state.closed:
            return
        self.record.notify(texts.PLAYBACK_FAILED)
        self.tasks.spawn(self._end_after_failure("playback failed", "the voice connection kept failing"))

    async def _end_after_failure(self, what: str, detail: str) -> None:
        await self.close(f"{what}: {detail}")
        self._on_end(self, what)

    # -- status --------------------------------------------------------------------------------------------------

    def humans_present(self) -> int:
        return self.voice.humans_present()

    def recent_speakers(self) -> list[str]:
        return self.record.recent_speakers()

    async def status_embed(self, store: SettingsStore) -> discord.Embed:
        """The ``/voice status`` embed: channel, uptime, mode, speakers, latency, reconnects, tokens and cost."""
        today = await store.usage(self.guild_id, self.state.today())
        return self.record.status_embed(
            channel_id=self.channel_id,
            uptime_s=int(self.lifetime.elapsed_s()),
            today_minutes=today.minutes,
            today_cost_usd=today.cost_usd,
        )
