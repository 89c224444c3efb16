"""The ``/persona`` slash commands everyone may use: show who the bot is. Choosing one is for managers
(:mod:`cogs.persona_admin`). Personas come from :class:`~bot.persona.library.PersonaLibrary`."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import texts
from bot.persona import PersonaError
from cogs._base import BotCog, UserFacingError, defer, member_of, reply


@app_commands.guild_only()
class PersonaCog(BotCog, group_name="persona", group_description="Who the bot is"):
    """Show the persona."""

    @app_commands.command(name="show", description="Show the bot's current persona")
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        guild = member_of(interaction).guild
        await defer(interaction)  # the store may take longer than Discord's 3 s to answer a command
        name = (await self.bot.store.get(guild.id)).persona
        try:
            persona = await self.bot.persona_book.load(guild.id, name)
        except PersonaError as error:
            raise UserFacingError(texts.bad_persona(name or "default", error.reason)) from error
        embed = discord.Embed(title=persona.name, description=persona.style)
        embed.add_field(name="Age", value=str(persona.age))
        for key, value in persona.facts.items():
            embed.add_field(name=key.replace("_", " ").capitalize(), value=value)
        embed.set_footer(text=f"persona: {name or 'default'}")
        await reply(interaction, embed=embed)  # fitted to Discord's limits there


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(PersonaCog(bot))  # type: ignore[arg-type]
