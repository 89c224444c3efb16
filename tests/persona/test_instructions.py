"""The session instructions: identity, style, spoken brevity, the tool rule, several people, no leaked facts."""

from __future__ import annotations

from bot.persona import TOOL_NAME, Persona, default_persona, persona_instructions

REX = Persona(
    name="Rex",
    aliases=("T-Rex", "Big R"),
    age=31,
    style="Gruff but kind, with dry jokes.",
    facts={"favorite_food": "steak tartare"},
    extra_facts={"pet_name": "Bitey"},
    greeting="Yo, Rex here.",
)


def test_says_who_and_how() -> None:
    text = persona_instructions(REX)
    assert text.startswith("You are Rex")
    assert '"T-Rex" or "Big R"' in text
    assert "Gruff but kind, with dry jokes." in text
    assert "Yo, Rex here." in text


def test_demands_the_tool_before_personal_facts() -> None:
    text = persona_instructions(REX)
    assert f"ALWAYS call the {TOOL_NAME} tool" in text
    assert "Never invent a personal fact" in text
    assert "favorite food" in text and "pet name" in text  # the topics it may ask about


def test_short_spoken_answers_and_several_people() -> None:
    text = persona_instructions(REX)
    assert "short" in text
    assert "Several people" in text


def test_facts_themselves_are_left_to_the_tool() -> None:
    text = persona_instructions(REX)
    for secret in ("steak tartare", "Bitey", "31"):
        assert secret not in text


def test_without_aliases_or_greeting() -> None:
    text = persona_instructions(Persona(name="Plain", age=1, style="calm"))
    assert "also call you" not in text
    assert "When you first join" not in text
    assert "Topics it knows: name, age." in text


def test_default_persona_instructions_are_not_empty() -> None:
    persona = default_persona()
    text = persona_instructions(persona)
    assert persona.name in text
    assert persona.style in text
