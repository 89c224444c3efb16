"""The system instructions that make the Realtime model speak as the persona."""

from __future__ import annotations

from collections.abc import Sequence

from bot.persona.lookup import known_topics
from bot.persona.model import Persona

TOOL_NAME = "get_your_info"


def persona_instructions(persona: Persona, roster: Sequence[str] = ()) -> str:
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
        "Several people may be in the room at once and may talk to each other, not to you. Before each thing "
        'someone says you get a note such as "[Alice is speaking]"; "[several is speaking]" means people talked '
        'over each other and "[someone is speaking]" that the speaker is unknown. Never read these notes aloud. '
        "Address people by name, keep track of who said what, and if it is unclear who asked or what was said, "
        "ask briefly instead of guessing. When people talk to each other, do not butt in unless you are addressed.",
        f"Your personal facts: ALWAYS call the {TOOL_NAME} tool before you state anything about yourself (your age, "
        "likes, favourites, hobbies, background), even if you think you remember it, and say only what it returns. "
        f"Never invent a personal fact. If {TOOL_NAME} returns an error or no information, say you would rather "
        f"not say or do not have one, without making anything up. Topics it knows: {topics}.",
    ]
    if roster:
        sections.append(f"Now in the voice channel with you: {', '.join(roster)}.")
    if persona.greeting:
        sections.append(f'When you first join, greet everyone in your own words, for example: "{persona.greeting}"')
    return "\n\n".join(sections)


def _join(names: tuple[str, ...]) -> str:
    quoted = [f'"{n}"' for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
