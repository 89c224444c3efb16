"""The ``/persona-admin`` slash commands, for managers: choose the persona, and make the server's own.

A group of its own, so Discord hides it from members without **Manage Server** (``default_permissions``);
:func:`~cogs._base.manager_only` still checks each call (Manage Server or ``MANAGER_ROLE``). Server personas are
kept in the store as TOML and checked by the same loader as the operator's files (:mod:`bot.persona.server`), with
the bounds of a server persona; ``create`` and ``edit`` open a form, ``fact`` sets one fact at a time, ``import`` and
``export`` move the TOML in and out as a file, ``delete`` asks first.
"""

from __future__ import annotations

import io
import logging
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import texts
from bot.persona import FACT_KEYS, Persona, PersonaError
from bot.persona.loader import SERVER_PERSONA_LIMITS
from bot.persona.server import MAX_SERVER_PERSONAS, check_key, from_form, parse_server_persona, with_fact
from bot.persona.toml_writer import dump_persona
from bot.store import StoreError, StoreUnavailable
from cogs._base import BotCog, Confirm, UserFacingError, before_answer, defer, manager_only, member_of, reply

if TYPE_CHECKING:
    from bot.app import VoiceBot

_log = logging.getLogger(__name__)

#: Discord shows at most this many autocomplete choices.
MAX_CHOICES = 25


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class PersonaAdminCog(BotCog, group_name="persona-admin", group_description="Choose and make who the bot is here"):
    """Choose the persona; make, edit, import, export and delete the server's own."""

    @app_commands.command(name="set", description="Choose the persona (takes effect on the next join or reset)")
    @app_commands.describe(name="This server's persona, or one the bot's owner shares ('default' is the bot's own)")
    @app_commands.check(manager_only)
    async def set_(self, interaction: discord.Interaction[Any], name: str) -> None:
        guild = member_of(interaction).guild
        await defer(interaction)  # the store may take longer than Discord's 3 s to answer a command
        choices = await self.bot.persona_book.choices(guild.id)
        known = [choice.key for choice in choices]
        if name not in known:
            raise UserFacingError(texts.unknown_persona_short(name, known))
        try:
            persona = await self.bot.persona_book.load(guild.id, name)
        except PersonaError as error:
            raise UserFacingError(texts.bad_persona(name, error.reason)) from error
        await self.bot.store.update(guild.id, {"persona": name})
        await reply(interaction, texts.persona_set(persona.name))

    @set_.autocomplete("name")
    async def _persona_names(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._choices(interaction, current, include_shared=True)

    @app_commands.command(name="create", description="Make a persona for this server (opens a form)")
    @app_commands.describe(key="A short name for it: letters, digits, - and _ (e.g. pirate)")
    @app_commands.check(manager_only)
    async def create(self, interaction: discord.Interaction[Any], key: str) -> None:
        guild = member_of(interaction).guild
        key = self._new_key(key)
        async with before_answer("checking the server's personas"):  # a form must be the first answer
            own = await self.bot.store.personas(guild.id)
        if key in own:
            raise UserFacingError(texts.persona_exists(key))
        if len(own) >= MAX_SERVER_PERSONAS:
            raise UserFacingError(texts.too_many_personas(MAX_SERVER_PERSONAS))
        await interaction.response.send_modal(PersonaForm(self.bot, guild.id, key, None))

    @app_commands.command(name="edit", description="Change this server's persona: name, age, style, greeting")
    @app_commands.describe(key="One of this server's personas")
    @app_commands.check(manager_only)
    async def edit(self, interaction: discord.Interaction[Any], key: str) -> None:
        guild = member_of(interaction).guild
        async with before_answer("reading a server persona"):  # a form must be the first answer
            persona = await self._server_persona(guild.id, key)
        await interaction.response.send_modal(PersonaForm(self.bot, guild.id, key, persona))

    @app_commands.command(name="fact", description="Set or remove one fact of this server's persona")
    @app_commands.describe(
        key="One of this server's personas",
        fact="A known fact (hobby, favorite_food, ...) or any other topic, e.g. hometown",
        value="What it is (leave empty to remove the fact)",
    )
    @app_commands.check(manager_only)
    async def fact(
        self,
        interaction: discord.Interaction[Any],
        key: str,
        fact: app_commands.Range[str, 1, 48],
        value: app_commands.Range[str, 0, 500] = "",
    ) -> None:
        guild = member_of(interaction).guild
        await defer(interaction)
        persona = await self._server_persona(guild.id, key)
        try:
            _, toml = with_fact(persona, fact, value)
        except PersonaError as error:
            raise UserFacingError(texts.persona_invalid(error.reason)) from error
        await save_persona(self.bot, guild.id, key, toml)
        await reply(interaction, texts.fact_saved(key, fact, removed=not value.strip()))

    @app_commands.command(name="import", description="Add or replace a server persona from a TOML file")
    @app_commands.describe(file="A persona TOML file (the same format as the bot's persona files)", key="Its key")
    @app_commands.check(manager_only)
    async def import_(
        self, interaction: discord.Interaction[Any], file: discord.Attachment, key: str | None = None
    ) -> None:
        guild = member_of(interaction).guild
        if file.size > SERVER_PERSONA_LIMITS.max_bytes:
            raise UserFacingError(texts.persona_file_too_large(file.filename, SERVER_PERSONA_LIMITS.max_bytes))
        await defer(interaction)
        key = self._new_key(key if key is not None else PurePath(file.filename).stem)
        data = await file.read()
        try:
            persona, toml = parse_server_persona(data, source=file.filename)
        except PersonaError as error:
            raise UserFacingError(texts.persona_invalid(str(error))) from error
        created = await save_persona(self.bot, guild.id, key, toml)
        await reply(interaction, texts.persona_imported(key, persona.name, created))

    @app_commands.command(name="export", description="Download a persona as a TOML file")
    @app_commands.describe(key="This server's persona, or one the bot's owner shares")
    @app_commands.check(manager_only)
    async def export(self, interaction: discord.Interaction[Any], key: str) -> None:
        guild = member_of(interaction).guild
        await defer(interaction)
        toml = await self.bot.store.persona(guild.id, key)
        if toml is None:
            try:
                toml = dump_persona(self.bot.personas.load(key))
            except PersonaError as error:
                raise UserFacingError(texts.bad_persona(key, error.reason)) from error
        file = discord.File(io.BytesIO(toml.encode("utf-8")), filename=f"{key}.toml")
        await reply(interaction, texts.persona_exported(key), file=file)

    @app_commands.command(name="delete", description="Delete one of this server's personas (asks first)")
    @app_commands.describe(key="One of this server's personas")
    @app_commands.check(manager_only)
    async def delete(self, interaction: discord.Interaction[Any], key: str) -> None:
        member = member_of(interaction)
        guild_id = member.guild.id
        await defer(interaction)
        persona = await self._server_persona(guild_id, key)

        async def confirmed(click: discord.Interaction[Any]) -> None:
            await self.bot.store.delete_persona(guild_id, key)
            if (await self.bot.store.get(guild_id)).persona == key:
                await self.bot.store.update(guild_id, {"persona": None})  # back to the bot's own
            _log.info("guild %s: a server persona was deleted by a manager", guild_id)
            await click.response.edit_message(content=texts.persona_deleted(key), view=None)

        view = Confirm(member.id, confirmed)
        view.question = interaction
        await reply(interaction, texts.persona_delete_confirm(key, persona.name), view=view)

    @edit.autocomplete("key")
    @fact.autocomplete("key")
    @delete.autocomplete("key")
    async def _own_keys(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await self._choices(interaction, current, include_shared=False)

    @export.autocomplete("key")
    async def _any_keys(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await self._choices(interaction, current, include_shared=True)

    @fact.autocomplete("fact")
    async def _fact_names(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        wanted = current.lower()
        return [app_commands.Choice(name=k, value=k) for k in FACT_KEYS if wanted in k][:MAX_CHOICES]

    # -- inside --------------------------------------------------------------------------------------------------

    async def _choices(
        self, interaction: discord.Interaction[Any], current: str, *, include_shared: bool
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        wanted = current.lower()
        try:
            choices = await self.bot.persona_book.choices(interaction.guild_id)
        except StoreError:
            return []  # autocomplete has no way to say it; the command itself will
        return [
            app_commands.Choice(name=texts.persona_choice_label(c.key, c.server), value=c.key)
            for c in choices
            if (c.server or include_shared) and wanted in c.key.lower()
        ][:MAX_CHOICES]

    def _new_key(self, key: str) -> str:
        """A key for a new server persona: well formed, and not one of the operator's shared personas."""
        try:
            key = check_key(key)
        except PersonaError as error:
            raise UserFacingError(str(error)) from error
        if self.bot.persona_book.is_shared(key):
            raise UserFacingError(texts.persona_key_taken(key))
        return key

    async def _server_persona(self, guild_id: int, key: str) -> Persona:
        toml = await self.bot.store.persona(guild_id, key)
        if toml is None:
            raise UserFacingError(texts.no_server_persona(key))
        try:
            persona, _ = parse_server_persona(toml, source=f"server persona {key!r}")
        except PersonaError as error:  # stored by an older bot with looser rules: say so, change nothing
            raise UserFacingError(texts.bad_persona(key, error.reason)) from error
        return persona


async def save_persona(bot: VoiceBot, guild_id: int, key: str, toml: str) -> bool:
    """Store a checked persona; returns whether it is new. Too many personas is the member's answer (a
    :class:`UserFacingError`); a store that cannot answer stays :class:`StoreUnavailable`."""
    try:
        return await bot.store.put_persona(guild_id, key, toml, max_count=MAX_SERVER_PERSONAS)
    except StoreUnavailable:
        raise
    except StoreError as error:
        raise UserFacingError(texts.too_many_personas(MAX_SERVER_PERSONAS)) from error


class PersonaForm(discord.ui.Modal):
    """The form behind ``create`` and ``edit``: name, age, style, greeting, aliases (facts keep their values)."""

    def __init__(self, bot: VoiceBot, guild_id: int, key: str, persona: Persona | None) -> None:
        super().__init__(title=texts.persona_form_title(key, editing=persona is not None))
        self.bot = bot
        self.guild_id = guild_id
        self.key = key
        self.base = persona
        limits = SERVER_PERSONA_LIMITS
        self.name: discord.ui.TextInput[PersonaForm] = discord.ui.TextInput(
            label="Name", max_length=limits.name_chars, default=persona.name if persona else None
        )
        self.age: discord.ui.TextInput[PersonaForm] = discord.ui.TextInput(
            label="Age", max_length=3, default=str(persona.age) if persona else None
        )
        self.style: discord.ui.TextInput[PersonaForm] = discord.ui.TextInput(
            label="How it talks",
            style=discord.TextStyle.paragraph,
            max_length=limits.style_chars,
            default=persona.style if persona else None,
        )
        self.greeting: discord.ui.TextInput[PersonaForm] = discord.ui.TextInput(
            label="Greeting (optional)",
            required=False,
            max_length=limits.greeting_chars,
            default=persona.greeting if persona else None,
        )
        self.aliases: discord.ui.TextInput[PersonaForm] = discord.ui.TextInput(
            label="Other names it answers to (comma-separated)",
            required=False,
            max_length=400,
            default=", ".join(persona.aliases) if persona else None,
        )
        for item in (self.name, self.age, self.style, self.greeting, self.aliases):
            self.add_item(item)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        try:
            persona, toml = from_form(
                name=self.name.value,
                age=self.age.value,
                style=self.style.value,
                greeting=self.greeting.value,
                aliases=self.aliases.value,
                base=self.base,
            )
        except PersonaError as error:
            await reply(interaction, texts.persona_invalid(error.reason))
            return
        try:
            created = await save_persona(self.bot, self.guild_id, self.key, toml)
        except UserFacingError as error:
            await reply(interaction, str(error))
            return
        except StoreUnavailable:
            await reply(interaction, texts.STORE_UNAVAILABLE)
            return
        await reply(interaction, texts.persona_saved(self.key, persona.name, created))

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]  # Modal narrows View.on_error, as discord.py does
        _log.error("the persona form failed", exc_info=error)
        await reply(interaction, texts.GENERIC_ERROR)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(PersonaAdminCog(bot))  # type: ignore[arg-type]
