"""The personas a guild can choose: the built-in default (or ``PERSONA_FILE``) plus ``DATA_DIR/personas/*.toml``."""

from __future__ import annotations

import re
from pathlib import Path

from bot.persona import Persona, PersonaError, default_persona, load_persona

DEFAULT_NAME = "default"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class PersonaLibrary:
    """Looks personas up by name: ``default`` is the configured default, other names are files in ``directory``."""

    def __init__(self, directory: Path, default_file: Path | None = None) -> None:
        self.directory = directory
        self.default_file = default_file

    def names(self) -> list[str]:
        """``default`` first, then the persona files' names, sorted."""
        found = sorted(p.stem for p in self.directory.glob("*.toml") if _NAME.match(p.stem) and p.is_file())
        return [DEFAULT_NAME, *(n for n in found if n != DEFAULT_NAME)]

    def load(self, name: str | None) -> Persona:
        """The persona called ``name`` (``None`` or ``default``: the default one).

        Raises:
            PersonaError: no such persona, or its file is invalid (the message names the file and line).
        """
        if name is None or name == DEFAULT_NAME:
            return load_persona(self.default_file) if self.default_file is not None else default_persona()
        if not _NAME.match(name):
            raise PersonaError(f"{name!r} is not a persona name (letters, digits, - and _ only)")
        path = self.directory / f"{name}.toml"
        if not path.is_file():
            raise PersonaError(f"there is no persona called {name!r}")
        return load_persona(path)
