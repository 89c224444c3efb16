"""Reading a persona from TOML: every problem becomes a :class:`PersonaError` naming the file and the line."""

from __future__ import annotations

import difflib
import functools
import logging
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bot.persona.model import FACT_KEYS, Persona, PersonaError

_log = logging.getLogger(__name__)

#: A persona file is a few hundred bytes; anything far larger is a mistake (or not a persona).
MAX_FILE_BYTES = 256 * 1024
MAX_AGE = 200
DEFAULT_RESOURCE = "default.toml"
_PACKAGE = "bot.persona"


@dataclass(frozen=True, slots=True)
class PersonaLimits:
    """Bounds on a persona's size; ``None``: unbounded. Files on the host are the operator's and bounded only in
    size; personas made by server managers in Discord are bounded everywhere (:data:`SERVER_PERSONA_LIMITS`)."""

    max_bytes: int = MAX_FILE_BYTES
    name_chars: int | None = None
    alias_chars: int | None = None
    aliases: int | None = None
    style_chars: int | None = None
    greeting_chars: int | None = None
    fact_chars: int | None = None
    fact_key_chars: int | None = None
    extra_facts: int | None = None

    def chars_for(self, key: str, section: str | None) -> int | None:
        if section is not None:
            return self.fact_chars
        return {"name": self.name_chars, "style": self.style_chars, "greeting": self.greeting_chars}.get(key)


FILE_LIMITS = PersonaLimits()
#: What a server's managers may make in Discord (README, "Server personas").
SERVER_PERSONA_LIMITS = PersonaLimits(
    max_bytes=16 * 1024,
    name_chars=64,
    alias_chars=64,
    aliases=10,
    style_chars=1500,
    greeting_chars=300,
    fact_chars=500,
    fact_key_chars=48,
    extra_facts=25,
)

_TOP_KEYS = ("name", "aliases", "age", "style", "voice", "greeting", "facts", "extra_facts")
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
#: Control characters (C0, DEL, C1) are never part of persona text; line breaks and tabs only where noted.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Texts that may span lines: the style, the greeting and the facts. Names, aliases and voices are one line.
_MULTILINE_KEYS = frozenset({"style", "greeting"})
_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(?:#.*)?$")


def load_persona(path: Path) -> Persona:
    """Read and validate the persona in the TOML file at ``path``.

    Raises:
        PersonaError: the file is missing, unreadable, not UTF-8, not valid TOML, or a key is missing, unknown or of
            the wrong type. The message names the file and, when there is one, the line.
    """
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # never more: PERSONA_FILE could name something huge
    except FileNotFoundError:
        raise PersonaError("persona file not found", source=path) from None
    except IsADirectoryError:
        raise PersonaError("is a directory, not a persona file", source=path) from None
    except OSError as exc:
        raise PersonaError(f"cannot read the persona file ({exc.strerror or exc})", source=path) from None
    return parse_persona(data, source=str(path))


@functools.cache
def default_persona() -> Persona:
    """The built-in persona shipped as ``bot/persona/default.toml``."""
    data = resources.files(_PACKAGE).joinpath(DEFAULT_RESOURCE).read_bytes()
    return parse_persona(data, source=f"{_PACKAGE}/{DEFAULT_RESOURCE}")


def parse_persona(data: bytes | str, *, source: str = "<persona>", limits: PersonaLimits = FILE_LIMITS) -> Persona:
    """Validate persona TOML (``bytes`` must be UTF-8); ``source`` names it in error messages.

    Raises:
        PersonaError: as for :func:`load_persona`, and when the persona exceeds ``limits``.
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise PersonaError(f"is larger than a persona file may be ({limits.max_bytes:,} bytes)", source=source)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = data[: exc.start].count(b"\n") + 1
            raise PersonaError(
                f"is not valid UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8",
                source=source,
                line=bad_line,
            ) from None
    else:
        text = data
    text = text.removeprefix("\ufeff")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION.search(str(exc))
        syntax_line = int(match.group(1)) if match else None
        raise PersonaError(f"invalid TOML: {exc}", source=source, line=syntax_line) from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise PersonaError("arrays or tables are nested too deeply for a persona file", source=source) from None
    persona = _Validator(text, source, limits).persona(table)
    _log.debug("loaded persona %r from %s", persona.name, source)
    return persona


class _Validator:
    """Checks a parsed table against the persona schema, pointing at the line of the offending key."""

    def __init__(self, text: str, source: str, limits: PersonaLimits = FILE_LIMITS) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.limits = limits

    def check_length(self, value: str, limit: int | None, label: str, key: str, section: str | None) -> None:
        if limit is not None and len(value) > limit:
            raise self.fail(f"'{label}' is {len(value):,} characters; at most {limit:,} are allowed", key, section)

    def fail(self, reason: str, key: str | None = None, table: str | None = None) -> PersonaError:
        line = self.find_line(key, table) if key is not None else None
        return PersonaError(reason, source=self.source, line=line)

    def find_line(self, key: str, table: str | None) -> int | None:
        """The first line assigning ``key`` inside ``[table]`` (``None``: top level), else anywhere as a dotted key."""
        assignment = re.compile(rf"""^\s*(?:["']?{re.escape(key)}["']?)\s*=""")
        dotted = re.compile(rf"""(?:^|\.)\s*["']?{re.escape(key)}["']?\s*=""")
        current: str | None = None
        fallback: int | None = None
        for number, line in enumerate(self.lines, start=1):
            header = _TABLE_HEADER.match(line)
            if header:
                current = header.group(1).replace('"', "").replace("'", "").replace(" ", "")
                if current == (key if table is None else f"{table}.{key}"):
                    return number  # the key is a whole table, e.g. an unknown [fact] or a [facts.hobby]
                continue
            if current == table and assignment.match(line):
                return number
            if fallback is None and dotted.search(line.split("#", 1)[0]):
                fallback = number
        if table is not None and key != table:
            # the whole table may be at fault (e.g. ``facts = "x"``); point at it
            return fallback if fallback is not None else self.find_line(table, None)
        return fallback

    def persona(self, table: dict[str, Any]) -> Persona:
        self.reject_unknown(table, _TOP_KEYS, None, "")
        name = self.text(table, "name", required=True)
        assert name is not None
        age = table.get("age")
        if age is None:
            raise self.fail("missing required key 'age' (a whole number, e.g. age = 24)")
        if isinstance(age, bool) or not isinstance(age, int):
            raise self.fail(f"'age' must be a whole number, not {_kind(age)}", "age")
        if not 0 <= age <= MAX_AGE:
            raise self.fail(f"'age' must be between 0 and {MAX_AGE}, not {age}", "age")
        style = self.text(table, "style", required=True)
        assert style is not None
        return Persona(
            name=name,
            age=age,
            style=style,
            aliases=self.aliases(table),
            facts=self.facts(table, "facts", allowed=FACT_KEYS),
            extra_facts=self.extra_facts(table),
            voice=self.text(table, "voice"),
            greeting=self.text(table, "greeting"),
        )

    def text(
        self, table: dict[str, Any], key: str, *, required: bool = False, section: str | None = None
    ) -> str | None:
        label = f"{section}.{key}" if section else key
        if key not in table:
            if required:
                raise self.fail(f"missing required key '{label}' (a text in quotes)")
            return None
        value = table[key]
        if not isinstance(value, str):
            raise self.fail(f"'{label}' must be a text in quotes, not {_kind(value)}", key, section)
        value = value.strip()
        if not value:
            raise self.fail(f"'{label}' must not be empty", key, section)
        self.reject_control(value, label, key, section, multiline=section is not None or key in _MULTILINE_KEYS)
        self.check_length(value, self.limits.chars_for(key, section), label, key, section)
        return value

    def reject_control(self, value: str, label: str, key: str, section: str | None, *, multiline: bool) -> None:
        """Control characters would reach the model and Discord as they are: refuse them, naming the first."""
        found = (_CONTROL_BUT_LINE_BREAKS if multiline else _CONTROL).search(value)
        if found is not None:
            what = "line breaks" if found.group() in "\n\r" else f"control characters (U+{ord(found.group()):04X})"
            raise self.fail(f"'{label}' must not contain {what}", key, section)

    def aliases(self, table: dict[str, Any]) -> tuple[str, ...]:
        value = table.get("aliases", [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail("'aliases' must be a list of non-empty texts, e.g. aliases = [\"Ai\"]", "aliases")
        if self.limits.aliases is not None and len(value) > self.limits.aliases:
            raise self.fail(f"'aliases' has {len(value)} names; at most {self.limits.aliases} are allowed", "aliases")
        for alias in value:
            self.reject_control(alias.strip(), "aliases", "aliases", None, multiline=False)
            self.check_length(alias.strip(), self.limits.alias_chars, "aliases", "aliases", None)
        return tuple(v.strip() for v in value)

    def facts(self, table: dict[str, Any], section: str, *, allowed: tuple[str, ...] | None) -> dict[str, str]:
        value = table.get(section, {})
        if not isinstance(value, dict):
            raise self.fail(f"'{section}' must be a table ([{section}] with key = \"text\" lines)", section)
        if allowed is not None:
            self.reject_unknown(value, allowed, section, " (put other facts under [extra_facts])")
        facts: dict[str, str] = {}
        for key in value:
            if _CONTROL.search(key):
                raise self.fail(f"a key under [{section}] contains control characters", section)
            self.check_length(key, self.limits.fact_key_chars, f"{section}.{key[:48]}", key, section)
            text = self.text(value, key, section=section)
            assert text is not None
            facts[key] = text
        return facts

    def extra_facts(self, table: dict[str, Any]) -> dict[str, str]:
        extra = self.facts(table, "extra_facts", allowed=None)
        if self.limits.extra_facts is not None and len(extra) > self.limits.extra_facts:
            count, most = len(extra), self.limits.extra_facts
            raise self.fail(f"[extra_facts] has {count} facts; at most {most} are allowed", "extra_facts")
        for key in extra:
            if key in FACT_KEYS or key in ("name", "age"):
                where = "at the top" if key in ("name", "age") else "under [facts]"
                raise self.fail(f"'extra_facts.{key}' is a standard fact: set it {where} instead", key, "extra_facts")
        return extra

    def reject_unknown(self, table: dict[str, Any], allowed: tuple[str, ...], section: str | None, hint: str) -> None:
        for key in table:
            if key in allowed:
                continue
            label = f"{section}.{key}" if section else key
            close = difflib.get_close_matches(
                key.replace("favourite", "favorite").replace("colour", "color"), allowed, 1
            )
            suggestion = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(allowed)}"
            raise self.fail(f"unknown key '{label}'{suggestion}{hint}", key, section)


def _kind(value: object) -> str:
    kinds = {bool: "true/false", int: "a number", float: "a number", str: "a text", list: "a list", dict: "a table"}
    return kinds.get(type(value), type(value).__name__)
