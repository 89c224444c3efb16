"""Writing a persona back as TOML, in the same format the loader reads (for ``/persona export`` and for storing
server personas): ``parse_persona(dump_persona(p)) == p`` for every valid persona."""

from __future__ import annotations

import re

from bot.persona.model import Persona

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (one line; escapes for quotes, backslashes and control characters)."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


def dump_persona(persona: Persona) -> str:
    """The persona as a TOML document the loader accepts."""
    lines = [f"name = {toml_string(persona.name)}"]
    if persona.aliases:
        lines.append(f"aliases = [{', '.join(toml_string(a) for a in persona.aliases)}]")
    lines.append(f"age = {persona.age}")
    lines.append(f"style = {toml_string(persona.style)}")
    if persona.greeting is not None:
        lines.append(f"greeting = {toml_string(persona.greeting)}")
    if persona.voice is not None:
        lines.append(f"voice = {toml_string(persona.voice)}")
    for section, facts in (("facts", persona.facts), ("extra_facts", persona.extra_facts)):
        if facts:
            lines.append("")
            lines.append(f"[{section}]")
            lines.extend(f"{toml_key(key)} = {toml_string(value)}" for key, value in facts.items())
    return "\n".join(lines) + "\n"
