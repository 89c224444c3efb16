"""The bot process: an ``AutoShardedBot`` with minimal intents that loads every cog in ``cogs/``.

One process runs the shards it is given (``SHARD_IDS`` of ``SHARD_COUNT``; every shard, or Discord's advice, when
unset). Application commands are synced only by the process that runs shard 0, so a cluster syncs them once.
"""

from __future__ import annotations

import enum
import logging
import pkgutil
from collections.abc import Sequence
from typing import Any

import discord
import yarl
from discord.ext import commands

import cogs
from bot import texts
from bot.config import Config
from bot.logging_setup import note_shards
from bot.ops.health import HealthReport, finite_or_none
from bot.persona.library import PersonaLibrary
from bot.session.persona_book import PersonaBook
from bot.session.registry import SessionFactory, SessionManager
from bot.store import SettingsStore

_log = logging.getLogger(__name__)

#: Exactly what the bot needs in a server, and nothing more.
REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True,
    connect=True,
    speak=True,
    send_messages=True,
    embed_links=True,
    use_application_commands=True,
)
INVITE_SCOPES = ("bot", "applications.commands")


def bot_intents() -> discord.Intents:
    """Guilds and voice states only: no message content, no members, no presences."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.voice_states = True
    return intents


def invite_url(application_id: int) -> str:
    """The OAuth2 URL that adds the bot to a server with :data:`REQUIRED_PERMISSIONS`."""
    return discord.utils.oauth_url(application_id, permissions=REQUIRED_PERMISSIONS, scopes=INVITE_SCOPES)


class SyncTarget(enum.Enum):
    """Where a bot process registers its slash commands."""

    NONE = "none"
    DEV_GUILD = "dev guild"
    GLOBAL = "global"


def sync_target(dev_guild_id: int | None, shard_ids: Sequence[int] | None) -> SyncTarget:
    """Commands are registered once, by the process that runs shard 0 (or every shard): to the development guild
    alone when one is set (a global copy would show every command twice there), else globally."""
    if shard_ids is not None and 0 not in shard_ids:
        return SyncTarget.NONE
    return SyncTarget.DEV_GUILD if dev_guild_id is not None else SyncTarget.GLOBAL


def use_discord_endpoints(api_url: str | None, gateway_url: str | None) -> None:
    """Point discord.py at another REST API base and gateway (a proxy, or a local stand-in); None keeps Discord's.

    discord.py has no per-client option for these; like its own API-version switch, they are class attributes,
    so this is for a process that runs one bot (``python -m bot``).
    """
    if api_url is not None:
        discord.http.Route.BASE = api_url.rstrip("/")
    if gateway_url is not None:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def extension_names() -> list[str]:
    """The dotted names of every extension module in the ``cogs`` package."""
    return [f"{cogs.__name__}.{m.name}" for m in pkgutil.iter_modules(cogs.__path__) if not m.name.startswith("_")]


class VoiceBot(commands.AutoShardedBot):
    """The bot. Shared services are passed in; extensions are loaded in :meth:`setup_hook`."""

    def __init__(
        self,
        config: Config,
        *,
        store: SettingsStore,
        personas: PersonaLibrary,
        session_factory: SessionFactory,
    ) -> None:
        shards: dict[str, Any] = {"shard_count": config.shard_count}
        if config.shard_ids is not None:
            shards["shard_ids"] = list(config.shard_ids)
        super().__init__(command_prefix=commands.when_mentioned, intents=bot_intents(), help_command=None, **shards)
        self.config = config
        self.store = store
        self.personas = personas
        #: The personas each server can talk as: its own (made in Discord) and the operator's shared ones.
        self.persona_book = PersonaBook(personas, store)
        self.sessions = SessionManager(session_factory, max_sessions=config.max_sessions)

    @property
    def syncs_commands(self) -> bool:
        """Whether this process syncs the application commands: the one that runs shard 0 (or every shard)."""
        return sync_target(self.config.dev_guild_id, self.config.shard_ids) is not SyncTarget.NONE

    def health(self) -> HealthReport:
        """Ready when logged in and every shard of this process is connected; with the figures behind it."""
        shards = self.shards
        connected = {shard_id: not info.is_closed() for shard_id, info in shards.items()}
        expected = self.config.shard_ids if self.config.shard_ids is not None else tuple(sorted(shards))
        ready = (
            self.is_ready()
            and not self.is_closed()
            and bool(connected)
            and all(connected.get(shard_id, False) for shard_id in expected)
        )
        return HealthReport(
            ready=ready,
            shard_ids=tuple(expected),
            shard_count=self.shard_count,
            latency_s={shard_id: finite_or_none(info.latency) for shard_id, info in shards.items()},
            sessions=len(self.sessions),
        )

    async def shutdown(self, notice_wait_s: float) -> None:
        """A clean stop: every live channel reads and hears that the bot restarts (for at most ``notice_wait_s``),
        the sessions close with their usage written, then the bot logs out."""
        _log.info("shutting down: telling %d live sessions", len(self.sessions))
        await self.sessions.close_all("restarting", notice=texts.RESTARTING, notice_wait_s=notice_wait_s)
        await self.close()

    async def close(self) -> None:
        """Leave every voice channel, close every Realtime session, flush the settings store, then log out."""
        await self.sessions.close_all()
        await self.store.close()
        await super().close()

    async def setup_hook(self) -> None:
        for name in extension_names():
            await self.load_extension(name)
            _log.info("loaded extension %s", name)
        target = sync_target(self.config.dev_guild_id, self.config.shard_ids)
        if target is SyncTarget.NONE:
            return  # the process that runs shard 0 syncs them, once for the whole cluster
        if target is SyncTarget.DEV_GUILD:
            assert self.config.dev_guild_id is not None
            guild = discord.Object(id=self.config.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            _log.info("synced %d commands to the development guild %s only", len(synced), guild.id)
            return
        synced = await self.tree.sync()
        _log.info("synced %d global commands (they may take up to an hour to appear)", len(synced))

    async def on_ready(self) -> None:
        user = self.user
        if user is None:  # pragma: no cover - discord.py sets it before READY
            return
        note_shards(sorted(self.shards), self.shard_count)
        _log.info(
            "logged in as %s (id %s) in %d servers, shards %s of %s",
            user, user.id, len(self.guilds), sorted(self.shards), self.shard_count,
        )  # fmt: skip
        _log.info("invite the bot with: %s", invite_url(self.application_id or user.id))
