"""The bot process: a ``commands.Bot`` with minimal intents that loads every cog in ``cogs/``."""

from __future__ import annotations

import enum
import logging
import pkgutil

import discord
from discord.ext import commands

import cogs
from bot.config import Config
from bot.persona.library import PersonaLibrary
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


def sync_target(dev_guild_id: int | None, shard_id: int | None) -> SyncTarget:
    """Commands are registered once, from shard 0 (or the only process): to the development guild alone when one
    is set (a global copy would show every command twice there), else globally."""
    if shard_id not in (None, 0):
        return SyncTarget.NONE
    return SyncTarget.DEV_GUILD if dev_guild_id is not None else SyncTarget.GLOBAL


def extension_names() -> list[str]:
    """The dotted names of every extension module in the ``cogs`` package."""
    return [f"{cogs.__name__}.{m.name}" for m in pkgutil.iter_modules(cogs.__path__) if not m.name.startswith("_")]


class VoiceBot(commands.Bot):
    """The bot. Shared services are passed in; extensions are loaded in :meth:`setup_hook`."""

    def __init__(
        self,
        config: Config,
        *,
        store: SettingsStore,
        personas: PersonaLibrary,
        session_factory: SessionFactory,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=bot_intents(),
            help_command=None,
            shard_id=config.shard_id,
            shard_count=config.shard_count,
        )
        self.config = config
        self.store = store
        self.personas = personas
        self.sessions = SessionManager(session_factory)

    async def close(self) -> None:
        """Leave every voice channel, close every Realtime session, flush the settings store, then log out."""
        await self.sessions.close_all()
        self.store.close()
        await super().close()

    async def setup_hook(self) -> None:
        for name in extension_names():
            await self.load_extension(name)
            _log.info("loaded extension %s", name)
        target = sync_target(self.config.dev_guild_id, self.config.shard_id)
        if target is SyncTarget.NONE:
            return  # another shard (shard 0) registers the commands
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
        _log.info("logged in as %s (id %s) in %d servers", user, user.id, len(self.guilds))
        _log.info("invite the bot with: %s", invite_url(self.application_id or user.id))
