"""The bot's persona: loaded from TOML (the operator's files and the personas a server's managers make), written back
as TOML, turned into session instructions and a ``get_your_info`` tool, and the library of files to choose from.

Pure logic: no asyncio, discord or websockets; imports only :mod:`bot.tools` of the bot.
"""

from __future__ import annotations

from bot.persona.instructions import TOOL_NAME, persona_instructions
from bot.persona.loader import default_persona, load_persona, parse_persona
from bot.persona.lookup import get_your_info, known_topics
from bot.persona.model import FACT_KEYS, Persona, PersonaError
from bot.persona.toolset import persona_tools

__all__ = [
    "FACT_KEYS",
    "TOOL_NAME",
    "Persona",
    "PersonaError",
    "default_persona",
    "get_your_info",
    "known_topics",
    "load_persona",
    "parse_persona",
    "persona_instructions",
    "persona_tools",
]
