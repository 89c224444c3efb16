"""Personas made by a server's managers in Discord: their names, how they are built from a form and a fact at a
time, and how they are checked -- always through the same loader as the operator's files, with the bounds of
:data:`~bot.persona.loader.SERVER_PERSONA_LIMITS`, so a server persona is valid exactly when its TOML is.

Pure logic: the store keeps each persona as its TOML text; the cogs ask for the fields.
"""

from __future__ import annotations

import dataclasses
import re

from bot.persona.loader import SERVER_PERSONA_LIMITS, parse_persona
from bot.persona.model import FACT_KEYS, Persona, PersonaError
from bot.persona.toml_writer import dump_persona

#: How many personas one server may keep (README, "Server personas").
MAX_SERVER_PERSONAS = 25
#: A persona's key: what ``/persona-admin set`` and the other commands call it (like an operator file's name).
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_EXTRA_KEY = re.compile(r"^[a-z0-9][a-z0-9_ -]{0,47}$")
_SOURCE = "server persona"


def check_key(key: str) -> str:
    """``key`` normalised (lower case, trimmed), or a :class:`PersonaError` saying what a key may be."""
    normal = key.strip().lower()
    if not _KEY.match(normal):
        raise PersonaError(f"{key[:40]!r} cannot name a persona: use 1-32 letters, digits, - or _ (e.g. pirate)")
    return normal


def validated(persona: Persona) -> tuple[Persona, str]:
    """The persona as the loader reads it back from its TOML, and that TOML; bounded like every server persona.

    Raises:
        PersonaError: the persona breaks a rule (the message names the field).
    """
    text = dump_persona(persona)
    return parse_persona(text, source=_SOURCE, limits=SERVER_PERSONA_LIMITS), text


def parse_server_persona(data: bytes | str, source: str) -> tuple[Persona, str]:
    """A persona from an uploaded TOML file (errors name the file, line and field) and its normalised TOML."""
    persona = parse_persona(data, source=source, limits=SERVER_PERSONA_LIMITS)
    return validated(persona)


def from_form(
    *, name: str, age: str, style: str, greeting: str = "", aliases: str = "", base: Persona | None = None
) -> tuple[Persona, str]:
    """A persona from the create/edit form's fields (``base``: the persona being edited, whose facts are kept).

    ``aliases`` is a comma-separated list; an empty ``greeting`` means none.
    """
    age_text = age.strip()
    if not (age_text.isascii() and age_text.isdigit()):
        raise PersonaError(f"'age' must be a whole number, not {age_text[:20]!r}")
    persona = Persona(
        name=name,
        age=int(age_text),
        style=style,
        aliases=tuple(a.strip() for a in aliases.split(",") if a.strip()),
        facts=dict(base.facts) if base is not None else {},
        extra_facts=dict(base.extra_facts) if base is not None else {},
        voice=base.voice if base is not None else None,
        greeting=greeting.strip() or None,
    )
    return validated(persona)


def with_fact(persona: Persona, key: str, value: str) -> tuple[Persona, str]:
    """``persona`` with one fact set (``key`` one of :data:`FACT_KEYS`, or any other short key for an extra fact)
    or, with an empty ``value``, removed."""
    facts, extra = dict(persona.facts), dict(persona.extra_facts)
    name = key.strip()
    known = name.lower().replace(" ", "_")
    if known in FACT_KEYS:
        target, name = facts, known
    elif _EXTRA_KEY.match(name.lower()):
        target = extra
    else:
        raise PersonaError(f"{key[:40]!r} cannot name a fact: use up to 48 letters, digits, spaces, - or _")
    if value.strip():
        target[name] = value
    else:
        target.pop(name, None)
    return validated(dataclasses.replace(persona, facts=facts, extra_facts=extra))
