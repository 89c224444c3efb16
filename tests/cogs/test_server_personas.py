"""Personas made by a server's managers, through the real ``/persona-admin`` cog in the scripted guild: the form,
facts one at a time, import and export of TOML files, deletion after a confirmation, the choice in ``/persona-admin
set`` (own and shared, marked) and ``/persona show``; every file checked like the operator's persona files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import discord
from discord import app_commands

from bot import texts
from bot.app import VoiceBot
from bot.persona import parse_persona
from bot.persona.loader import SERVER_PERSONA_LIMITS
from bot.persona.server import MAX_SERVER_PERSONAS
from bot.session.persona_book import PersonaChoice
from tests.cogs.conftest import interaction
from tests.cogs.test_privacy_data import press
from tests.discord_world import FakeInteraction, World

ALICE, BOB, CAROL = 5, 6, 7  # bob has Manage Server, carol the manager role


@dataclass
class Upload:
    """Stands in for ``discord.Attachment``: a file a member attached to the command."""

    filename: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    async def read(self) -> bytes:
        return self.data


def attached(filename: str, data: bytes) -> discord.Attachment:
    return cast("discord.Attachment", Upload(filename, data))


def cog(bot: VoiceBot) -> Any:
    return bot.get_cog("PersonaAdminCog")


async def run(bot: VoiceBot, command_name: str, fake: FakeInteraction, /, **options: Any) -> FakeInteraction:
    """Run ``/persona-admin NAME`` as discord.py does: the checks (the manager check), then the command, and any
    error through the cog's error reporter, so a refusal is the reply the member reads."""
    admin = cog(bot)
    command: app_commands.Command[Any, ..., Any] = getattr(admin, command_name)
    try:
        if await command._check_can_run(fake.as_interaction()):
            await command.callback(admin, fake.as_interaction(), **options)
    except app_commands.AppCommandError as error:
        await admin.cog_app_command_error(fake.as_interaction(), error)
    except Exception as error:
        await admin.cog_app_command_error(fake.as_interaction(), app_commands.CommandInvokeError(command, error))
    return fake


async def fill_in(bot: VoiceBot, world: World, asked: FakeInteraction, **fields: str) -> FakeInteraction:
    """Fill the form the command opened (fields by their attribute name) and submit it, as Discord would."""
    form = asked.modal
    assert form is not None, "the command opened no form"
    for name, value in fields.items():
        getattr(form, name)._value = value
    submitted = interaction(bot, world, asked.user.id)
    await form.on_submit(submitted.as_interaction())
    return submitted


async def create(bot: VoiceBot, world: World, key: str, user: int = BOB, **fields: str) -> FakeInteraction:
    asked = await run(bot, "create", interaction(bot, world, user), key=key)
    if asked.modal is None:
        return asked  # refused before any form
    return await fill_in(bot, world, asked, **{"name": "Captain Rowan", "age": "41", "style": "Gruff.", **fields})


async def test_a_manager_makes_a_persona_with_the_form_then_facts_and_chooses_it(bot: VoiceBot, world: World) -> None:
    guild_id = world.guild.id
    made = await create(bot, world, "rowan", greeting="Ahoy!", aliases="Rowan, Cap")
    assert made.last.content == texts.persona_saved("rowan", "Captain Rowan", created=True) and made.last.ephemeral
    stored = await bot.store.persona(guild_id, "rowan")
    assert stored is not None and parse_persona(stored).aliases == ("Rowan", "Cap")
    fact = interaction(bot, world, CAROL)  # the manager role is enough
    await run(bot, "fact", fact, key="rowan", fact="favorite_food", value="grog")
    assert fact.last.content == texts.fact_saved("rowan", "favorite_food", removed=False)
    extra = interaction(bot, world, BOB)
    await run(bot, "fact", extra, key="rowan", fact="ship", value="the Gull")
    persona = await bot.persona_book.load(guild_id, "rowan")
    assert persona.facts["favorite_food"] == "grog" and persona.extra_facts["ship"] == "the Gull"

    choose = interaction(bot, world, BOB)
    await run(bot, "set_", choose, name="rowan")
    assert choose.last.content == texts.persona_set("Captain Rowan")
    assert (await bot.store.get(guild_id)).persona == "rowan"
    show = interaction(bot, world, ALICE)
    persona_cog: Any = bot.get_cog("PersonaCog")
    await persona_cog.show.callback(persona_cog, show.as_interaction())
    assert show.last.embed is not None and show.last.embed.title == "Captain Rowan"

    options = interaction(bot, world, BOB)
    choices = await cog(bot)._persona_names(options.as_interaction(), "")
    labels = {c.value: c.name for c in choices}
    assert labels["rowan"] == texts.persona_choice_label("rowan", server=True)
    assert labels["pirate"] == texts.persona_choice_label("pirate", server=False)  # the operator's, marked shared
    assert next(iter(labels)) == "rowan"  # the server's own come first
    own = await cog(bot)._own_keys(options.as_interaction(), "")
    assert [c.value for c in own] == ["rowan"]


async def test_editing_keeps_the_facts_and_a_bad_form_saves_nothing(bot: VoiceBot, world: World) -> None:
    await create(bot, world, "rowan")
    await run(bot, "fact", interaction(bot, world, BOB), key="rowan", fact="hobby", value="knots")
    asked = interaction(bot, world, BOB)
    await run(bot, "edit", asked, key="rowan")
    assert asked.modal is not None and asked.modal.name.default == "Captain Rowan"  # type: ignore[attr-defined]
    edited = await fill_in(bot, world, asked, name="Old Rowan", age="42")
    assert edited.last.content == texts.persona_saved("rowan", "Old Rowan", created=False)
    persona = await bot.persona_book.load(world.guild.id, "rowan")
    assert (persona.name, persona.age, persona.facts["hobby"]) == ("Old Rowan", 42, "knots")

    again = interaction(bot, world, BOB)
    await run(bot, "edit", again, key="rowan")
    refused = await fill_in(bot, world, again, age="old", style="x\u0007")
    assert refused.last.content == texts.persona_invalid("'age' must be a whole number, not 'old'")
    assert (await bot.persona_book.load(world.guild.id, "rowan")).age == 42  # nothing changed


async def test_keys_may_not_take_a_shared_persona_and_the_count_is_bounded(bot: VoiceBot, world: World) -> None:
    taken = await create(bot, world, "pirate")  # the operator's persona file in the fixture
    assert taken.last.content == texts.persona_key_taken("pirate") and taken.modal is None
    bad = await create(bot, world, "Pi Rate!")
    assert bad.modal is None and "cannot name a persona" in (bad.last.content or "")
    await create(bot, world, "rowan")
    twice = await create(bot, world, "rowan")
    assert twice.last.content == texts.persona_exists("rowan")
    for index in range(MAX_SERVER_PERSONAS - 1):
        await bot.store.put_persona(world.guild.id, f"p{index}", 'name = "P"\nage = 1\nstyle = "s"\n', max_count=99)
    full = await create(bot, world, "onemore")
    assert full.last.content == texts.too_many_personas(MAX_SERVER_PERSONAS) and full.modal is None
    stranger = await create(bot, world, "mine", user=ALICE)  # no Manage Server, no manager role
    assert stranger.modal is None and stranger.last.content == texts.NOT_MANAGER


async def test_import_checks_the_file_like_a_persona_file_and_export_round_trips(bot: VoiceBot, world: World) -> None:
    guild_id = world.guild.id
    cases = [
        (b'name = "Q"\nage = \n', "q.toml, line 2: invalid TOML"),
        (b'name = "Q"\nage = 9\nstyle = "s"\nmood = "grumpy"\n', "q.toml, line 4: unknown key 'mood'"),
        (b'name = "Q"\nage = 9\nstyle = "s"\n[facts]\nhobby = "go\\u0000"\n', "'facts.hobby' must not contain"),
        (b"\xff\xfe not utf-8", "q.toml, line 1: is not valid UTF-8"),
    ]
    for data, reason in cases:
        refused = interaction(bot, world, BOB)
        await run(bot, "import_", refused, file=attached("q.toml", data))
        assert reason in (refused.last.content or ""), refused.last.content
    huge = interaction(bot, world, BOB)
    oversized = b'name = "Q"\nage = 9\nstyle = "s"\n# ' + b"x" * SERVER_PERSONA_LIMITS.max_bytes
    await run(bot, "import_", huge, file=attached("big.toml", oversized))
    assert huge.last.content == texts.persona_file_too_large("big.toml", SERVER_PERSONA_LIMITS.max_bytes)
    clash = interaction(bot, world, BOB)
    await run(bot, "import_", clash, file=attached("pirate.toml", b"x"))
    assert clash.last.content == texts.persona_key_taken("pirate")
    assert await bot.store.personas(guild_id) == {}  # nothing was saved

    # export the operator's pirate, import it as this server's own, export that: the same persona all along
    shared = interaction(bot, world, BOB)
    await run(bot, "export", shared, key="pirate")
    assert shared.last.file is not None and shared.last.file.filename == "pirate.toml"
    toml = shared.last.file.fp.read()
    imported = interaction(bot, world, BOB)
    await run(bot, "import_", imported, file=attached("pirate.toml", toml), key="sea")
    assert imported.last.content == texts.persona_imported("sea", "Captain Rowan", created=True)
    back = interaction(bot, world, BOB)
    await run(bot, "export", back, key="sea")
    assert back.last.file is not None and back.last.file.fp.read() == toml
    assert await bot.persona_book.load(guild_id, "sea") == bot.personas.load("pirate")


async def test_delete_asks_first_and_a_chosen_persona_falls_back_to_the_bots_own(bot: VoiceBot, world: World) -> None:
    guild_id = world.guild.id
    await create(bot, world, "rowan")
    await bot.store.update(guild_id, {"persona": "rowan"})
    asked = interaction(bot, world, BOB)
    await run(bot, "delete", asked, key="rowan")
    assert asked.last.content == texts.persona_delete_confirm("rowan", "Captain Rowan") and asked.last.view is not None
    assert await bot.store.persona(guild_id, "rowan") is not None  # nothing deleted before the answer
    click = interaction(bot, world, BOB)
    await press(asked.last.view, asked.last.view.yes, click)  # type: ignore[attr-defined]
    assert click.last.content == texts.persona_deleted("rowan")
    assert await bot.store.persona(guild_id, "rowan") is None and (await bot.store.get(guild_id)).persona is None
    missing = interaction(bot, world, BOB)
    await run(bot, "delete", missing, key="rowan")
    assert missing.last.content == texts.no_server_persona("rowan")


async def test_server_personas_are_exported_and_forgotten_with_the_servers_data(bot: VoiceBot, world: World) -> None:
    await create(bot, world, "rowan")
    exported = await bot.store.export_guild(world.guild.id)
    assert [p["key"] for p in exported["personas"]] == ["rowan"]
    await bot.store.delete_guild(world.guild.id)
    assert await bot.persona_book.choices(world.guild.id) == [
        PersonaChoice("default", False),
        PersonaChoice("broken", False),
        PersonaChoice("pirate", False),
    ]
