"""The ``/persona-admin`` slash commands, for managers: choose the persona.

A group of its own, so Discord hides it from members without **Manage Server** (``default_permissions``);
:func:`~cogs._base.manager_only` still checks each call (Manage Server or ``MANAGER_ROLE``)."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import texts
from bot.persona import PersonaError
from cogs._base import BotCog, UserFacingError, manager_only, member_of, reply


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class PersonaAdminCog(BotCog, group_name="persona-admin", group_description="Choose who the bot is in this server"):
    """Choose the persona."""

    @app_commands.command(name="set", description="Choose the persona (takes effect on the next join or reset)")
    @app_commands.describe(name="A persona from the bot's persona folder, or 'default'")
    @app_commands.check(manager_only)
    async def set_(self, interaction: discord.Interaction[Any], name: str) -> None:
        guild = member_of(interaction).guild
        known = self.bot.personas.names()
        if name not in known:
            raise UserFacingError(texts.unknown_persona_short(name, known))
        try:
            persona = self.bot.personas.load(name)
        except PersonaError as error:
            raise UserFacingError(texts.bad_persona(name, error.reason)) from error
        await self.bot.store.update(guild.id, {"persona": name})
        await reply(interaction, texts.persona_set(persona.name))

    @set_.autocomplete("name")
    async def _persona_names(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        wanted = current.lower()
        return [app_commands.Choice(name=n, value=n) for n in self.bot.personas.names() if wanted in n.lower()][:25]


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(PersonaAdminCog(bot))  # type: ignore[arg-type]
