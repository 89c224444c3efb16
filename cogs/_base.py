"""What the slash-command cogs share: the bot's services at hand, the manager check, replies that always fit
Discord's limits, a confirmation button, and one error reporter that turns any command error into a short message.

Every group is guild-only at the group level (a subcommand's own ``guild_only`` does nothing on Discord); the manager
groups also carry ``default_permissions(manage_guild=True)``, so Discord hides them from other members and server
admins can change who sees them on the Integrations page. :func:`manager_only` still runs on each call, for the
``MANAGER_ROLE`` and for servers whose admins opened the group to more people."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import texts
from bot.session.guards import is_manager
from bot.store import StoreUnavailable
from bot.texts import fit

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


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """``embed`` cut to Discord's limits (see :mod:`bot.texts.fit`); colour, URL and images are kept."""
    fitted = fit.fit_embed(
        fit.EmbedText(
            title=embed.title or "",
            description=embed.description or "",
            fields=tuple(fit.EmbedField(f.name or "", f.value or "", bool(f.inline)) for f in embed.fields),
            footer=embed.footer.text or "",
            author=embed.author.name or "",
        )
    )
    embed.title = fitted.title or None
    embed.description = fitted.description or None
    embed.clear_fields()
    for field in fitted.fields:
        embed.add_field(name=field.name, value=field.value, inline=field.inline)
    if embed.footer.text is not None or fitted.footer:
        embed.set_footer(text=fitted.footer or None, icon_url=embed.footer.icon_url)
    if embed.author.name is not None:
        embed.set_author(name=fitted.author, url=embed.author.url, icon_url=embed.author.icon_url)
    return embed


def fitted(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Message arguments with the content and embeds cut to Discord's limits."""
    if kwargs.get("content") is not None:
        kwargs["content"] = fit.fit_message(str(kwargs["content"]))
    if kwargs.get("embed") is not None:
        kwargs["embed"] = fit_embed(kwargs["embed"])
    return kwargs


async def reply(interaction: discord.Interaction[Any], content: str | None = None, **kwargs: Any) -> None:
    """Answer (ephemerally unless ``ephemeral=False``), whether or not the interaction was already answered or
    deferred; the content and embed always fit Discord's limits."""
    kwargs.setdefault("ephemeral", True)
    if content is not None:
        kwargs["content"] = content
    fitted(kwargs)
    if interaction.response.is_done():
        await interaction.followup.send(**kwargs)
    else:
        await interaction.response.send_message(**kwargs)


#: Longest wait for the store before a command's first answer, where the command cannot defer it (a form to open):
#: Discord drops an interaction not answered within 3 s.
BEFORE_ANSWER_STORE_WAIT_S = 2.0


async def defer(interaction: discord.Interaction[Any]) -> None:
    """Acknowledge the command privately ("thinking…") before slow work; :func:`reply` then answers in its place."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


@contextlib.asynccontextmanager
async def before_answer(what: str) -> AsyncIterator[None]:
    """Bound store calls made before a command's first answer to :data:`BEFORE_ANSWER_STORE_WAIT_S`, so a slow
    store becomes the ``STORE_UNAVAILABLE`` reply while the interaction can still be answered."""
    try:
        async with asyncio.timeout(BEFORE_ANSWER_STORE_WAIT_S):
            yield
    except TimeoutError as error:
        raise StoreUnavailable(
            f"the settings store did not answer within {BEFORE_ANSWER_STORE_WAIT_S:g} s ({what})"
        ) from error


class Confirm(discord.ui.View):
    """A "Delete" and a "Cancel" button, for the member who ran the command only. "Delete" runs ``on_confirm``,
    which answers the button's interaction (usually by editing the question); "Cancel" says nothing was done."""

    def __init__(
        self,
        owner_id: int,
        on_confirm: Callable[[discord.Interaction[Any]], Awaitable[None]],
        *,
        timeout_s: float = 60.0,
    ) -> None:
        super().__init__(timeout=timeout_s)
        self.owner_id = owner_id
        self._on_confirm = on_confirm
        self.confirmed: bool | None = None
        #: The command's interaction that showed the question, so an unanswered one can be closed on time-out.
        self.question: discord.Interaction[Any] | None = None

    async def on_timeout(self) -> None:
        """Nobody answered in time: say that nothing was done, and take the buttons away."""
        if self.question is None:
            return
        try:
            await self.question.edit_original_response(content=texts.CONFIRM_EXPIRED, view=None)
        except discord.HTTPException:
            _log.info("could not close an expired confirmation (the interaction expired first)")

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(texts.CONFIRM_NOT_YOURS, ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Delete", style=discord.ButtonStyle.danger)
    async def yes(self, interaction: discord.Interaction[Any], _button: discord.ui.Button[Confirm]) -> None:
        self.confirmed = True
        self.stop()
        try:
            await self._on_confirm(interaction)
        except StoreUnavailable as error:  # a button's error reaches no command error reporter: answer it here
            _log.warning("a confirmed action could not reach the store: %s", error)
            if interaction.response.is_done():
                await interaction.followup.send(texts.STORE_UNAVAILABLE, ephemeral=True)
            else:
                await interaction.response.edit_message(content=texts.STORE_UNAVAILABLE, view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def no(self, interaction: discord.Interaction[Any], _button: discord.ui.Button[Confirm]) -> None:
        self.confirmed = False
        self.stop()
        await interaction.response.edit_message(content=texts.FORGET_CANCELLED, view=None)


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
    elif isinstance(error, app_commands.CommandOnCooldown):
        message = texts.cooldown(getattr(interaction.command, "name", "?"), error.retry_after)
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
