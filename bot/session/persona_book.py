"""The personas one server can talk as: its own, made by its managers in Discord (kept in the store as TOML), and the
operator's shared ones (:class:`~bot.persona.library.PersonaLibrary`: the default and ``DATA_DIR/personas``).

A server persona's key never equals a shared persona's name when it is made (the commands refuse it); should an
operator add a file of that name later, the server's own persona wins in that server, so its choice never changes
behind its managers' backs.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.persona import Persona
from bot.persona.library import DEFAULT_NAME, PersonaLibrary
from bot.persona.server import parse_server_persona
from bot.store import SettingsStore


@dataclass(frozen=True, slots=True)
class PersonaChoice:
    """One persona a server may choose: its key, and whether the server made it (else the operator shares it)."""

    key: str
    server: bool


class PersonaBook:
    """Looks up the personas of a server: its own first, then the operator's."""

    def __init__(self, library: PersonaLibrary, store: SettingsStore) -> None:
        self.library = library
        self.store = store

    async def load(self, guild_id: int, name: str | None) -> Persona:
        """The persona ``name`` as the server sees it (``None`` or ``default``: the operator's default).

        Raises:
            PersonaError: no such persona, or it is invalid (the message names the file or persona and line).
            bot.store.StoreError: the store cannot answer.
        """
        if name is not None and name != DEFAULT_NAME:
            toml = await self.store.persona(guild_id, name)
            if toml is not None:
                persona, _ = parse_server_persona(toml, source=f"server persona {name!r}")
                return persona
        return self.library.load(name)

    async def choices(self, guild_id: int) -> list[PersonaChoice]:
        """The server's own personas, then the operator's shared ones (a shared name the server reused is its own)."""
        own = list(await self.store.personas(guild_id))
        shared = [name for name in self.library.names() if name not in own]
        return [*(PersonaChoice(key, True) for key in own), *(PersonaChoice(name, False) for name in shared)]

    def is_shared(self, name: str) -> bool:
        """Whether ``name`` is one of the operator's personas (a server persona may not take its name)."""
        return name in self.library.names()
