"""Building a live guild session from its parts: the voice connection, playback, the Realtime conversation, posting.

:class:`GuildSessionFactory` is the :data:`~bot.session.registry.SessionFactory` the bot runs with. For one
``/voice join`` it loads the guild's settings and persona, connects a :class:`~bot.voice.client.ReceivingVoiceClient`,
plays an :class:`~bot.voice.playback.OpusPlaybackSource` through the bot's one :class:`~bot.voice.sender.VoiceSender`,
opens the Realtime conversation and joins them in a :class:`~bot.session.guild_session.GuildSession`. Whatever
fails, everything opened so far is closed again, and the user gets one short sentence
(:class:`~bot.session.registry.JoinError`) without secrets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import discord

from bot import texts
from bot.config import Config, RealtimeConfig
from bot.persona import PersonaError
from bot.persona.library import PersonaLibrary
from bot.realtime.connection import RealtimeConversation
from bot.realtime.errors import RealtimeError
from bot.realtime.retry import RetryPolicy
from bot.session.guild_session import GuildSession
from bot.session.limits import SessionLimits
from bot.session.persona_book import PersonaBook
from bot.session.posting import Send, TextPoster
from bot.session.registry import JoinError, Session, VoiceTarget
from bot.store import GuildSettings, SettingsStore, StoreUnavailable
from bot.voice.client import ReceivingVoiceClient
from bot.voice.opus_encoder import encoder_settings
from bot.voice.playback import OpusPlaybackSource
from bot.voice.sender import VoiceSender

_log = logging.getLogger(__name__)

DEFAULT_VOICE_CONNECT_TIMEOUT_S = 20.0
_NO_MENTIONS = discord.AllowedMentions.none()


def session_limits(config: Config, settings: GuildSettings) -> SessionLimits:
    """The limits of one guild's session: the bot's configuration, with the guild's own daily budget if set."""
    budget = settings.daily_budget_min if settings.daily_budget_min is not None else config.daily_budget_min
    return SessionLimits(
        idle_leave_s=config.idle_leave_s,
        max_session_s=config.max_session_min * 60.0,
        daily_budget_s=budget * 60.0,
    )


def audio_recipient(realtime: RealtimeConfig) -> str:
    """Who receives the channel's audio, as the consent notice names it: OpenAI, Azure, or the custom host."""
    if realtime.provider == "openai":
        return "OpenAI"
    if realtime.provider == "azure":
        return "Microsoft Azure (OpenAI)"
    host = urlparse(realtime.url or "").hostname
    return host or "the bot owner's model server"


def transcript_destination(
    voice_channel: VoiceTarget,
    settings: Callable[[], GuildSettings],
    fallback: discord.abc.Messageable | None,
) -> Callable[[], Send | None]:
    """Where a session posts: the configured transcript channel, else the voice channel's own chat, else where
    ``/voice join`` was run. Resolved at each post, so a settings change applies at once."""

    def resolve() -> Send | None:
        guild = voice_channel.guild
        channel_id = settings().transcript_channel_id
        target: Any = guild.get_channel(channel_id) if channel_id is not None else None
        if target is None:
            current = guild.voice_client.channel if guild.voice_client is not None else voice_channel
            target = current if isinstance(current, discord.abc.Messageable) else fallback
        if target is None:
            return None

        async def send(text: str) -> object:
            return await target.send(text, allowed_mentions=_NO_MENTIONS)

        return send

    return resolve


class GuildSessionFactory:
    """Starts guild sessions for the :class:`~bot.session.registry.SessionManager`."""

    def __init__(
        self,
        config: Config,
        store: SettingsStore,
        personas: PersonaLibrary,
        *,
        voice_connect_timeout_s: float = DEFAULT_VOICE_CONNECT_TIMEOUT_S,
        retry_policy: RetryPolicy | None = None,
        sender: VoiceSender | None = None,
    ) -> None:
        self._config = config
        self._sender = sender if sender is not None else VoiceSender()
        self._store = store
        self._personas = PersonaBook(personas, store)
        self._voice_connect_timeout_s = voice_connect_timeout_s
        self._retry_policy = retry_policy

    async def __call__(
        self,
        channel: VoiceTarget,
        text_channel: discord.abc.Messageable | None,
        on_end: Callable[[Session, str], None],
    ) -> GuildSession:
        guild_id = channel.guild.id
        try:
            settings = await self._store.get(guild_id)
            privacy = await self._store.opted_out(guild_id)
            used_today_s = (await self._store.usage(guild_id, _today())).seconds
        except StoreUnavailable as error:
            _log.warning("guild %s: cannot join without the settings store: %s", guild_id, error)
            raise JoinError(texts.STORE_UNAVAILABLE) from error
        try:
            persona = await self._personas.load(guild_id, settings.persona)
        except PersonaError as error:
            raise JoinError(texts.bad_persona(settings.persona or "default", error.reason)) from error
        except StoreUnavailable as error:
            raise JoinError(texts.STORE_UNAVAILABLE) from error

        voice = await self._connect_voice(channel)
        playback = OpusPlaybackSource(encoder=encoder_settings(self._config.voice_encoding))
        conversation = RealtimeConversation(self._config.realtime, persona, settings, policy=self._retry_policy)
        session: GuildSession | None = None
        poster = TextPoster(transcript_destination(channel, lambda: _settings_of(session, settings), text_channel))
        try:
            session = GuildSession(
                guild_id=guild_id,
                persona=persona,
                settings=settings,
                voice=voice,
                playback=playback,
                conversation=conversation,
                store=self._store,
                privacy=privacy,
                used_today_before_s=used_today_s,
                limits=session_limits(self._config, settings),
                on_end=on_end,
                post=poster.post,
                consent_notice=texts.consent_notice(
                    persona.name, channel.mention, audio_recipient(self._config.realtime), settings.transcripts
                ),
                closers=(poster.close,),
            )
            await conversation.start(session)
            voice.play_source(playback, sender=self._sender, on_failed=session.on_playback_failed)
            session.start()
        except BaseException as error:
            await _close_quietly(conversation, voice, poster)
            if isinstance(error, RealtimeError):
                raise JoinError(texts.REALTIME_FAILED.format(reason=error)) from error
            raise
        _log.info("guild %s: talking as %s in channel %s", guild_id, persona.name, channel.id)
        return session

    async def _connect_voice(self, channel: VoiceTarget) -> ReceivingVoiceClient:
        stale = channel.guild.voice_client
        if stale is not None:  # left over from a session that ended badly: never let it block a join
            _log.warning("guild %s: dropping a stale voice connection", channel.guild.id)
            await stale.disconnect(force=True)
        try:
            voice = await channel.connect(
                cls=ReceivingVoiceClient, timeout=self._voice_connect_timeout_s, self_deaf=False, reconnect=True
            )
        except (TimeoutError, discord.ClientException, discord.ConnectionClosed, OSError) as error:
            _log.warning("guild %s: voice connection failed: %s", channel.guild.id, error)
            if isinstance(error, discord.ConnectionClosed) and error.code == 4017:
                raise JoinError(texts.DAVE_REQUIRED) from error
            raise JoinError(texts.VOICE_CONNECT_FAILED) from error
        if not isinstance(voice, ReceivingVoiceClient):  # pragma: no cover - connect returns an instance of cls
            raise JoinError(texts.VOICE_CONNECT_FAILED)
        return voice


def _today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def _settings_of(session: GuildSession | None, initial: GuildSettings) -> GuildSettings:
    return session.settings if session is not None else initial


async def _close_quietly(conversation: RealtimeConversation, voice: ReceivingVoiceClient, poster: TextPoster) -> None:
    for step in (conversation.close, lambda: voice.disconnect(force=True), poster.close):
        try:
            await asyncio.shield(step())
        except Exception:
            _log.exception("cleaning up after a failed join")
