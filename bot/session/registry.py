"""One voice session per guild: starting, moving, ending, and keeping guilds apart.

The :class:`SessionManager` owns the registry and a lock per guild, so two ``/voice join`` in one guild cannot
race, while guilds never wait on each other. A session that fails or ends on its own (alone, max length, budget,
kicked by a moderator) is removed; its failure is logged and reaches no other guild. With ``max_sessions`` set, a
process that is full refuses a new session with a friendly sentence (joins still starting count, so a burst of joins
cannot overshoot); a move closes the old session first, so it always has room.

Who controls the bot: while its channel has people in it, only a manager may move it away (the others are told it
is in use). A move never carries a conversation along: the old session is closed and a new one, with a new Realtime
session, starts in the new channel, so nothing heard in one channel reaches another.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import discord

from bot import texts
from bot.logging_setup import guild_context
from bot.ops import metrics
from bot.persona import Persona
from bot.store import GuildSettings, SettingsStore

_log = logging.getLogger(__name__)


#: The channels a session can talk in: a voice channel, or a stage (as a speaker).
VoiceTarget = discord.VoiceChannel | discord.StageChannel


class JoinError(Exception):
    """Joining failed; the message is a short sentence for the user (no secrets)."""


class InUseError(JoinError):
    """The bot is talking with people in another channel and the caller may not take it away."""

    def __init__(self, channel_id: int, humans: int) -> None:
        super().__init__(texts.in_use(f"<#{channel_id}>", humans))
        self.channel_id = channel_id
        self.humans = humans


class JoinOutcome(enum.Enum):
    """What :meth:`SessionManager.join` did."""

    JOINED = "joined"
    MOVED = "moved"
    ALREADY_HERE = "already here"


class Session(Protocol):
    """What the manager and the commands need of a guild's session."""

    @property
    def guild_id(self) -> int: ...
    @property
    def channel_id(self) -> int: ...
    @property
    def persona(self) -> Persona: ...
    async def reset(self, persona: Persona | None = None) -> None: ...
    async def say(self, text: str) -> None: ...
    async def status_embed(self, store: SettingsStore) -> discord.Embed: ...
    def humans_present(self) -> int:
        """People (not bots) in the session's channel."""

    async def apply_settings(self, settings: GuildSettings) -> None: ...
    async def close(self, reason: str) -> None: ...
    async def announce(self, notice: str, wait_s: float) -> None:
        """Post ``notice`` and say it out loud, waiting at most ``wait_s`` for it to be heard."""

    def on_presence_changed(self) -> None:
        """Someone joined or left the session's channel."""

    async def refresh_privacy(self) -> None:
        """A member changed their privacy choices."""

    async def forget_member(self, user_id: int) -> None:
        """A member deletes their data: drop what the session holds of them and has not stored yet."""


SessionFactory = Callable[
    [VoiceTarget, "discord.abc.Messageable | None", Callable[[Session, str], None]], Awaitable[Session]
]


class SessionManager:
    """The registry of live sessions, one per guild."""

    def __init__(self, factory: SessionFactory, *, max_sessions: int = 0) -> None:
        """``max_sessions``: live sessions this process holds at most (0: no limit)."""
        self._factory = factory
        self._sessions: dict[int, Session] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._max_sessions = max_sessions
        self._starting = 0

    def get(self, guild_id: int) -> Session | None:
        return self._sessions.get(guild_id)

    def __len__(self) -> int:
        return len(self._sessions)

    def _lock(self, guild_id: int) -> asyncio.Lock:
        return self._locks.setdefault(guild_id, asyncio.Lock())

    async def join(
        self,
        channel: VoiceTarget,
        text_channel: discord.abc.Messageable | None = None,
        *,
        may_take_over: bool = False,
    ) -> tuple[Session, JoinOutcome]:
        """Start a session in ``channel``, or move the guild's bot there with a fresh conversation.

        Args:
            may_take_over: The caller may move the bot away from people talking with it (a manager).

        Raises:
            InUseError: the bot is with people in another channel and ``may_take_over`` is false.
            JoinError: the voice connection or the Realtime session could not be started (after a move, the old
                session is already closed), or the process is full.
        """
        guild_id = channel.guild.id
        token = guild_context.set(guild_id)  # the session's log lines (and tasks) name their guild
        try:
            async with self._lock(guild_id):
                existing = self._sessions.get(guild_id)
                if existing is None:
                    return await self._start(channel, text_channel), JoinOutcome.JOINED
                if existing.channel_id == channel.id:
                    return existing, JoinOutcome.ALREADY_HERE
                humans = existing.humans_present()
                if humans and not may_take_over:
                    raise InUseError(existing.channel_id, humans)
                moved = await self._replace(existing, channel, text_channel, "moved to another channel")
                return moved, JoinOutcome.MOVED
        finally:
            guild_context.reset(token)

    async def follow(self, expected: Session, channel: VoiceTarget) -> Session | None:
        """The bot was dragged to ``channel`` (by a moderator): start a fresh conversation there.

        Only when ``expected`` is still the guild's session (a join or leave in between wins). Failures are logged;
        returns the new session, or ``None``.
        """
        guild_id = channel.guild.id
        token = guild_context.set(guild_id)
        try:
            async with self._lock(guild_id):
                if self._sessions.get(guild_id) is not expected:
                    return None
                try:
                    return await self._replace(expected, channel, None, "moved by a moderator")
                except JoinError as error:
                    _log.warning("guild %s: no session after a moderator move: %s", guild_id, error)
                    return None
        finally:
            guild_context.reset(token)

    async def _replace(
        self,
        old: Session,
        channel: VoiceTarget,
        text_channel: discord.abc.Messageable | None,
        reason: str,
    ) -> Session:
        """Close ``old`` (it leaves its channel) and start a new session in ``channel``: no history carried."""
        del self._sessions[old.guild_id]
        metrics.sessions_active(len(self._sessions))
        await self._close_quietly(old, reason)
        _log.info(
            "guild %s: moving from channel %s to %s with a fresh conversation", old.guild_id, old.channel_id, channel.id
        )
        return await self._start(channel, text_channel)

    async def _start(self, channel: VoiceTarget, text_channel: discord.abc.Messageable | None) -> Session:
        guild_id = channel.guild.id
        if self._max_sessions and len(self._sessions) + self._starting >= self._max_sessions:
            metrics.session_refused()
            _log.warning("guild %s: refused a session: this process is full (%d)", guild_id, self._max_sessions)
            raise JoinError(texts.PROCESS_FULL)
        self._starting += 1
        try:
            session = await self._factory(channel, text_channel, self._ended)
        except JoinError:
            raise
        except Exception as error:
            _log.exception("guild %s: starting a session failed", guild_id)
            raise JoinError(str(error) or type(error).__name__) from error
        finally:
            self._starting -= 1
        self._sessions[guild_id] = session
        metrics.sessions_active(len(self._sessions))
        _log.info("guild %s: session started in channel %s", guild_id, channel.id)
        return session

    def _ended(self, session: Session, reason: str) -> None:
        """Called by a session that ended on its own: forget it (it has already cleaned up)."""
        if self._sessions.get(session.guild_id) is session:
            del self._sessions[session.guild_id]
            metrics.sessions_active(len(self._sessions))
            _log.info("guild %s: session ended (%s)", session.guild_id, reason)

    async def leave(self, guild_id: int, reason: str, *, only: Session | None = None) -> bool:
        """End the guild's session (only if it is still ``only``, when given); returns whether one ended."""
        async with self._lock(guild_id):
            session = self._sessions.get(guild_id)
            if session is None or (only is not None and session is not only):
                return False
            del self._sessions[guild_id]
            metrics.sessions_active(len(self._sessions))
            await self._close_quietly(session, reason)
            return True

    async def apply_settings(self, guild_id: int, settings: GuildSettings) -> None:
        """Apply changed settings to the guild's live session, if any."""
        session = self._sessions.get(guild_id)
        if session is not None:
            try:
                await session.apply_settings(settings)
            except Exception:
                _log.exception("guild %s: applying settings to the live session failed", guild_id)

    async def close_all(
        self, reason: str = "shutting down", *, notice: str | None = None, notice_wait_s: float = 0.0
    ) -> None:
        """End every session (on shutdown), each in its own task so one slow guild does not hold up the rest.

        With ``notice``, each channel first reads it and hears it, for at most ``notice_wait_s``. Closing writes each
        session's usage.
        """
        sessions = list(self._sessions.values())
        self._sessions.clear()
        metrics.sessions_active(0)
        await asyncio.gather(*(self._close_quietly(s, reason, notice, notice_wait_s) for s in sessions))

    @staticmethod
    async def _close_quietly(session: Session, reason: str, notice: str | None = None, wait_s: float = 0.0) -> None:
        token = guild_context.set(session.guild_id)
        try:
            if notice is not None:
                await session.announce(notice, wait_s)
        except Exception:
            _log.exception("guild %s: the notice before closing failed", session.guild_id)
        try:
            await session.close(reason)
        except Exception:
            _log.exception("guild %s: closing the session failed", session.guild_id)
        finally:
            guild_context.reset(token)
