"""The persona's own tool: ``get_your_info(query)``, bound to one persona."""

from __future__ import annotations

from bot.persona.instructions import TOOL_NAME
from bot.persona.lookup import get_your_info, known_topics
from bot.persona.model import Persona
from bot.tools import ToolRegistry

#: Looking facts up is pure CPU over a few strings; anything slower is a bug.
LOOKUP_TIMEOUT_S = 2.0


def persona_tools(persona: Persona) -> ToolRegistry:
    """A registry holding ``get_your_info(query: str)`` answering from ``persona``'s facts."""
    registry = ToolRegistry()
    topics = ", ".join(known_topics(persona))
    description = (
        f"Look up a fact about yourself ({persona.name}): your name, age, hobby, favourites and more. Call this "
        "BEFORE stating any personal fact and say only what it returns; never invent one. Returns JSON with the "
        f"matching facts, or an error listing the known topics. Known topics: {topics}."
    )

    def lookup(query: str) -> str:
        """Look up a fact about yourself.

        Args:
            query: the topic in a few words, e.g. "favorite food", "age", "favorite team"; several topics may be
                asked at once, e.g. "favorite movie and favorite game".
        """
        return get_your_info(persona, query)

    registry.register(lookup, name=TOOL_NAME, description=description, timeout_s=LOOKUP_TIMEOUT_S)
    return registry
