"""The persona: who the bot is, as a frozen value read from a TOML file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

#: The fixed personal facts a persona file may set under ``[facts]``, in the order they are listed to the model.
FACT_KEYS: tuple[str, ...] = (
    "hobby",
    "favorite_food",
    "favorite_color",
    "favorite_music",
    "favorite_movie",
    "favorite_game",
    "favorite_sport",
    "favorite_team",
    "favorite_player",
    "favorite_programming_language",
)


class PersonaError(Exception):
    """A persona could not be loaded; the message names the file and, when known, the line.

    Attributes:
        source: the file (or resource) the persona came from.
        line: the 1-based line of the problem, or ``None`` when no single line is at fault.
        reason: the problem alone, without the file and line.
    """

    def __init__(self, reason: str, *, source: str | Path | None = None, line: int | None = None) -> None:
        self.source = str(source) if source is not None else None
        self.line = line
        self.reason = reason
        where = self.source or ""
        if line is not None:
            where = f"{where}, line {line}" if where else f"line {line}"
        super().__init__(f"{where}: {reason}" if where else reason)


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class Persona:
    """Who the bot is: a name, an age, a speaking style and the facts it may tell about itself.

    ``facts`` holds only the :data:`FACT_KEYS` that are set; ``extra_facts`` any further free-form facts. Both are
    read-only mappings (they take no part in hashing).
    """

    name: str
    age: int
    style: str
    aliases: tuple[str, ...] = ()
    facts: Mapping[str, str] = field(default_factory=dict, hash=False)
    extra_facts: Mapping[str, str] = field(default_factory=dict, hash=False)
    voice: str | None = None
    greeting: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.facts) - set(FACT_KEYS)
        if unknown:
            raise ValueError(f"unknown fact keys: {', '.join(sorted(unknown))}")
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "facts", _frozen({k: self.facts[k] for k in FACT_KEYS if k in self.facts}))
        object.__setattr__(self, "extra_facts", _frozen(self.extra_facts))
