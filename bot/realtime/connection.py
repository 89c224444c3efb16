"""The Realtime side of a guild session: :class:`~bot.session.protocols.Conversation` over a
:class:`RealtimeSession`.

:class:`RealtimeConversation` turns per-guild settings and a persona into session settings, and pumps the
session's outputs, in order, to a :class:`ConversationListener` (the ``GuildSession``'s ``on_*`` methods).
Barge-in stays with the listener: it clears its playback and calls :meth:`RealtimeConversation.interrupt`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from bot.config import DEFAULT_TRANSCRIPTION_MODEL, RealtimeConfig
from bot.ops import metrics
from bot.persona import Persona, persona_instructions, persona_tools
from bot.realtime import outputs as out
from bot.realtime.client_events import SessionSettings
from bot.realtime.driver import RealtimeSession
from bot.realtime.endpoint import endpoint_for
from bot.realtime.protocol import Bounds
from bot.realtime.retry import RetryPolicy
from bot.store import GuildSettings
from bot.tools import ToolRegistry

_log = logging.getLogger(__name__)

#: Every answer is bounded: about a minute of speech (audio runs at roughly 20 tokens a second) and its transcript,
#: the most the playback queue holds (:data:`bot.voice.playback.DEFAULT_MAX_BUFFERED_MS`).
ANSWER_MAX_OUTPUT_TOKENS = 1500


class ConversationListener(Protocol):
    """What a guild session hears from the conversation (called on the event loop, in wire order)."""

    def on_assistant_audio(self, item_id: str, pcm16_24k_mono: bytes) -> None: ...
    def on_speech_started(self) -> None: ...
    def on_speech_stopped(self) -> None: ...
    def on_turn_committed(self, item_id: str, previous_item_id: str | None) -> None: ...
    def on_user_transcript(self, item_id: str, text: str) -> None: ...
    def on_assistant_transcript(self, text: str) -> None: ...
    def on_tool_call(self, name: str, arguments: str, output: str) -> None: ...
    def on_usage(self, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None: ...
    def on_reconnected(self) -> None: ...
    def on_fatal_error(self, message: str) -> None: ...
    def on_answer_failed(self, message: str) -> None: ...
    def on_settings_rejected(self, message: str) -> None: ...


def session_settings(
    persona: Persona,
    settings: GuildSettings,
    default_voice: str,
    tools: ToolRegistry | None = None,
    roster: Sequence[str] = (),
    transcription_model: str = DEFAULT_TRANSCRIPTION_MODEL,
) -> SessionSettings:
    """The Realtime session settings for a persona, one guild's settings and who is in the channel.

    The server's VAD (``server_vad`` or ``semantic_vad``, per guild) commits turns but never answers or cancels on
    its own: the guild session labels each turn with its speakers first, decides whether to answer (listening
    modes), and decides barge-in (echo guard).
    """
    registry = tools if tools is not None else persona_tools(persona)
    return SessionSettings(
        instructions=persona_instructions(persona, roster),
        voice=settings.voice or default_voice,
        tools=tuple(registry.schemas()),
        turn_detection=settings.turn_detection,
        eagerness=settings.eagerness,
        vad_threshold=settings.vad_threshold,
        silence_duration_ms=settings.silence_ms,
        create_response=False,
        interrupt_response=False,
        transcription_model=transcription_model,
        max_output_tokens=ANSWER_MAX_OUTPUT_TOKENS,
    )


class RealtimeConversation:
    """One guild's Realtime conversation. :meth:`start` connects; then the listener hears everything."""

    def __init__(
        self,
        config: RealtimeConfig,
        persona: Persona,
        settings: GuildSettings,
        *,
        policy: RetryPolicy | None = None,
        bounds: Bounds | None = None,
    ) -> None:
        self._config = config
        self._persona = persona
        self._settings = settings
        self._roster: tuple[str, ...] = ()
        self._tools = persona_tools(persona)
        #: The voice of the running session: the API locks it once the model has spoken, so a new one waits for
        #: the next session (reset or rejoin).
        self._voice = settings.voice or config.voice
        self._session = RealtimeSession(
            endpoint_for(config),
            self._session_settings(),
            self._tools,
            policy=policy,
            bounds=bounds,
        )
        self._pump: asyncio.Task[None] | None = None

    @property
    def session(self) -> RealtimeSession:
        return self._session

    async def start(self, listener: ConversationListener) -> None:
        """Connect and start delivering outputs to ``listener``.

        Raises:
            bot.realtime.errors.RealtimeError: the first connection failed (one clear message, no secrets).
        """
        await self._session.start()
        self._pump = asyncio.get_running_loop().create_task(self._deliver(listener), name="realtime-pump")

    async def _deliver(self, listener: ConversationListener) -> None:
        async for event in self._session.events():
            metrics.realtime_output(event, self._config.model)
            try:
                self._deliver_one(listener, event)
            except Exception:
                _log.exception("conversation listener failed on %s", type(event).__name__)

    @staticmethod
    def _deliver_one(listener: ConversationListener, event: out.Output) -> None:
        match event:
            case out.AssistantAudio(item_id=item_id, pcm16=pcm16):
                listener.on_assistant_audio(item_id, pcm16)
            case out.UserSpeechStarted():
                listener.on_speech_started()
            case out.UserSpeechStopped():
                listener.on_speech_stopped()
            case out.UserTurnCommitted(item_id=item_id, previous_item_id=previous_item_id):
                listener.on_turn_committed(item_id, previous_item_id)
            case out.UserTranscript(item_id=item_id, text=text):
                listener.on_user_transcript(item_id, text)
            case out.AssistantTranscript(text=text):
                listener.on_assistant_transcript(text)
            case out.ToolCallFinished(name=name, arguments=arguments, output=output):
                listener.on_tool_call(name, arguments, output)
            case out.UsageReport(part=part, part_cost_usd=cost_usd):
                listener.on_usage(part.input_tokens, part.output_tokens, cost_usd)
            case out.SessionReady(reconnected=True):
                listener.on_reconnected()
            case out.SessionEnded(error=error) if error is not None:
                listener.on_fatal_error(error)
            case out.AnswerFailed(reason=reason):
                listener.on_answer_failed(reason)
            case out.SettingsRejected(message=message):
                listener.on_settings_rejected(message)

    # -- bot.session.guild_session.Conversation ------------------------------------------------------------------------

    def push_audio(self, pcm16_24k_mono: bytes) -> None:
        self._session.push_audio(pcm16_24k_mono)

    async def send_text(self, text: str) -> None:
        await self._session.send_text(text)

    async def interrupt(self, played_ms: Mapping[str, float]) -> None:
        await self._session.interrupt(played_ms)

    async def label_turn(self, item_id: str, previous_item_id: str | None, label: str) -> None:
        """Tell the model who spoke the committed turn ``item_id``."""
        await self._session.label_turn(previous_item_id, label)

    async def respond(self) -> None:
        await self._session.respond()

    async def set_roster(self, names: Sequence[str]) -> None:
        """Tell the model who is in the channel (a ``session.update``, only when it changed; kept across
        reconnects because it is part of the session settings)."""
        roster = tuple(names)
        if roster == self._roster:
            return
        self._roster = roster
        await self._update()

    async def reset(self) -> None:
        """Forget the conversation and start a fresh session, with the voice now configured."""
        self._voice = self._settings.voice or self._config.voice
        await self._update()
        await self._session.reset()

    async def apply_settings(self, settings: GuildSettings, persona: Persona) -> None:
        self._persona, self._settings = persona, settings
        self._tools = persona_tools(persona)
        await self._update()
        self._session.set_tools(self._tools)

    def _session_settings(self) -> SessionSettings:
        """The current settings with the running session's voice (see ``_voice``)."""
        current = session_settings(
            self._persona, self._settings, self._voice, self._tools, self._roster, self._config.transcription_model
        )
        return replace(current, voice=self._voice)

    async def _update(self) -> None:
        await self._session.update_settings(self._session_settings())

    async def close(self) -> None:
        await self._session.close()
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
