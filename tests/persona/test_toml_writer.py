from __future__ import annotations

import tomllib

import pytest

from bot.persona import Persona, default_persona, parse_persona
from bot.persona.toml_writer import dump_persona, toml_string


def test_the_default_persona_round_trips() -> None:
    persona = default_persona()
    assert parse_persona(dump_persona(persona)) == persona
    again = parse_persona(dump_persona(persona))
    assert dict(again.facts) == dict(persona.facts) and dict(again.extra_facts) == dict(persona.extra_facts)


def test_awkward_text_round_trips() -> None:
    persona = Persona(
        name='Dr. "Q" \\ Quinn',
        age=0,
        style="Line one.\nLine two,\twith a tab and an emoji 🎙️ and ünïcödé.",
        aliases=("Q", "Doc Q"),
        facts={"favorite_food": 'pie "à la mode"'},
        extra_facts={"home town": "Ørsta", "motto#1": "keep = calm"},
        voice="cedar",
        greeting="Hi!\r\nI'm Q.",
    )
    text = dump_persona(persona)
    back = parse_persona(text)
    assert back == persona
    assert dict(back.extra_facts) == {"home town": "Ørsta", "motto#1": "keep = calm"}
    assert back.greeting == "Hi!\r\nI'm Q."


@pytest.mark.parametrize("text", ["", "plain", 'q"uote', "back\\slash", "\u0000\u001f\u007f\u0085", "tab\there"])
def test_toml_string_is_read_back_as_written(text: str) -> None:
    assert tomllib.loads(f"v = {toml_string(text)}")["v"] == text
