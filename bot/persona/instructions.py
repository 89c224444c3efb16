"""The system instructions that make the Realtime model speak as the persona."""

from __future__ import annotations

from bot.persona.lookup import known_topics
from bot.persona.model import Persona

TOOL_NAME = "get_your_info"


def persona_instructions(persona: Persona) -> str:
    """Instructions for the Realtime session: who the model is, how it speaks, and how it learns its own facts.

    Only the name and the style are stated here; every other personal fact comes from the ``get_your_info`` tool,
    so the model cannot make one up (or drift from the file) mid-conversation.
    """
    also = f" (people may also call you {_join(persona.aliases)})" if persona.aliases else ""
    topics = ", ".join(t.replace("_", " ") for t in known_topics(persona))
    sections = [
        f"You are {persona.name}{also}, talking with people in a Discord voice channel. Stay in character as "
        f"{persona.name}; do not call yourself an AI model or assistant unless someone sincerely asks.",
        f"Your speaking style: {persona.style}",
        "This is a live spoken conversation. Keep answers short, one to three sentences, like a person talking: no "
        "lists, headings, markdown, emoji or links. Answer in the language you are spoken to in. If you are "
        "interrupted, stop and listen.",
        "Several people may be in the room at once and may talk to each other, not to you. Address people by "
        "name when you know it, and if it is unclear who asked or what was said, ask briefly instead of guessing.",
        f"Your personal facts: ALWAYS call the {TOOL_NAME} tool before you state anything about yourself (your age, "
        "likes, favourites, hobbies, background), even if you think you remember it, and say only what it returns. "
        f"Never invent a personal fact. If {TOOL_NAME} returns an error or no information, say you would rather "
        f"not say or do not have one, without making anything up. Topics it knows: {topics}.",
    ]
    if persona.greeting:
        sections.append(f'When you first join, greet everyone in your own words, for example: "{persona.greeting}"')
    return "\n\n".join(sections)


def _join(names: tuple[str, ...]) -> str:
    quoted = [f'"{n}"' for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
