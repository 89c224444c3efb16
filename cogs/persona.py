"""The ``/persona`` slash commands: show and choose who the bot is. Personas come from
:class:`~bot.persona.library.PersonaLibrary`."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import texts
from bot.persona import PersonaError
from cogs._base import BotCog, UserFacingError, manager_only, member_of, reply


class PersonaCog(BotCog, group_name="persona", group_description="Who the bot is"):
    """Show and choose the persona."""

    @app_commands.command(name="show", description="Show the bot's current persona")
    @app_commands.guild_only()
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        guild = member_of(interaction).guild
        name = (await self.bot.store.get(guild.id)).persona
        try:
            persona = self.bot.personas.load(name)
        except PersonaError as error:
            raise UserFacingError(texts.bad_persona(name or "default", error.reason)) from error
        embed = discord.Embed(title=persona.name, description=persona.style[:4000])
        embed.add_field(name="Age", value=str(persona.age))
        for key, value in list(persona.facts.items())[:20]:
            embed.add_field(name=key.replace("_", " ").capitalize(), value=value[:1000])
        embed.set_footer(text=f"persona: {name or 'default'}")
        await reply(interaction, embed=embed)

    @app_commands.command(name="set", description="Choose the persona (takes effect on the next join or reset)")
    @app_commands.describe(name="A persona from the bot's persona folder, or 'default'")
    @app_commands.check(manager_only)
    @app_commands.guild_only()
    async def set_(self, interaction: discord.Interaction[Any], name: str) -> None:
        guild = member_of(interaction).guild
        known = self.bot.personas.names()
        if name not in known:
            raise UserFacingError(texts.unknown_persona(name, known))
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
    await bot.add_cog(PersonaCog(bot))  # type: ignore[arg-type]
