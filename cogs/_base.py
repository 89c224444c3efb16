"""What the slash-command cogs share: the bot's services at hand, the manager check, ephemeral replies and one
error reporter that turns any command error into a short message."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import texts
from bot.session.guards import is_manager
from bot.store import StoreUnavailable

if TYPE_CHECKING:
    from bot.app import VoiceBot

_log = logging.getLogger(__name__)


class UserFacingError(app_commands.AppCommandError):
    """An error whose message is meant for the user as it is (short, no secrets)."""


def member_of(interaction: discord.Interaction[Any]) -> discord.Member:
    if interaction.guild is None or not isinstance(interaction.user, discord.Member):
        raise UserFacingError(texts.NOT_IN_GUILD)
    return interaction.user


async def manager_only(interaction: discord.Interaction[Any]) -> bool:
    """App-command check: Manage Server or the configured manager role."""
    member = member_of(interaction)
    bot: VoiceBot = interaction.client
    if not is_manager(member, bot.config.manager_role):
        raise UserFacingError(texts.NOT_MANAGER)
    return True


async def reply(interaction: discord.Interaction[Any], content: str | None = None, **kwargs: Any) -> None:
    """Answer ephemerally, whether or not the interaction was already answered or deferred."""
    kwargs.setdefault("ephemeral", True)
    if content is not None:
        kwargs["content"] = content
    if interaction.response.is_done():
        await interaction.followup.send(**kwargs)
    else:
        await interaction.response.send_message(**kwargs)


class BotCog(commands.GroupCog):
    """A slash-command group with the bot's services at hand and one error reporter for all its commands."""

    def __init__(self, bot: VoiceBot) -> None:
        self.bot = bot
        super().__init__()

    async def cog_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await report_error(interaction, error)


async def report_error(interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
    """Turn any command error into one short ephemeral message; log the unexpected ones."""
    original = getattr(error, "original", error)
    if isinstance(original, UserFacingError):
        message = str(original)
    elif isinstance(error, UserFacingError):
        message = str(error)
    elif isinstance(error, app_commands.NoPrivateMessage):
        message = texts.NOT_IN_GUILD
    elif isinstance(original, StoreUnavailable):
        _log.warning("command %s: %s", getattr(interaction.command, "qualified_name", "?"), original)
        message = texts.STORE_UNAVAILABLE
    else:
        _log.error("command %s failed", getattr(interaction.command, "qualified_name", "?"), exc_info=original)
        message = texts.GENERIC_ERROR
    try:
        await reply(interaction, message)
    except discord.HTTPException:
        _log.warning("could not report an error to the user (interaction expired)")
