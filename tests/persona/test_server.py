from __future__ import annotations

import pytest

from bot.persona import PersonaError, default_persona, parse_persona
from bot.persona.server import check_key, from_form, parse_server_persona, with_fact


def test_keys_are_short_slugs() -> None:
    assert check_key(" Pirate ") == "pirate" and check_key("dj-bot_2") == "dj-bot_2"
    for bad in ("", "-x", "a" * 33, "pi rate", "pirate!", "ü"):
        with pytest.raises(PersonaError, match="cannot name a persona"):
            check_key(bad)


def test_a_form_builds_a_persona_checked_like_a_file() -> None:
    persona, text = from_form(name=" Captain Rowan ", age="41", style="Gruff.\\nKind.", aliases="Rowan, Cap ,")
    assert (persona.name, persona.age, persona.aliases, persona.greeting) == (
        "Captain Rowan",
        41,
        ("Rowan", "Cap"),
        None,
    )
    assert parse_persona(text) == persona
    for fields, reason in (
        ({"age": "forty"}, "'age' must be a whole number"),
        ({"age": "300"}, "'age' must be between 0 and 200"),
        ({"name": "x" * 65}, "'name' is 65 characters"),
        ({"style": ""}, "'style' must not be empty"),
        ({"greeting": "hi\u0007"}, "'greeting' must not contain control characters"),
    ):
        form = {"name": "A", "age": "3", "style": "s", "greeting": "", **fields}
        with pytest.raises(PersonaError, match=reason):
            from_form(name=form["name"], age=form["age"], style=form["style"], greeting=form["greeting"])


def test_editing_keeps_the_facts_and_facts_are_set_one_at_a_time() -> None:
    base = default_persona()
    edited, _ = from_form(name="Aiko", age="25", style="Calmer now.", base=base)
    assert dict(edited.facts) == dict(base.facts) and dict(edited.extra_facts) == dict(base.extra_facts)
    spicy, _ = with_fact(edited, "Favorite food", "mapo tofu")
    assert spicy.facts["favorite_food"] == "mapo tofu"
    moved, _ = with_fact(spicy, "home town", "Kobe")
    assert moved.extra_facts["home town"] == "Kobe"
    gone, _ = with_fact(moved, "hobby", "  ")
    assert "hobby" not in gone.facts
    with pytest.raises(PersonaError, match=r"'facts\.hobby' is 501 characters"):
        with_fact(gone, "hobby", "h" * 501)
    with pytest.raises(PersonaError, match="cannot name a fact"):
        with_fact(gone, "what?!", "x")


def test_an_upload_is_checked_with_the_server_bounds() -> None:
    persona, text = parse_server_persona(b'name = "Q"\nage = 9\nstyle = "s"\n', source="q.toml")
    assert persona.name == "Q" and parse_persona(text) == persona
    with pytest.raises(PersonaError) as error:
        parse_server_persona(b'name = "Q"\nage = 9\nstyle = "s"\nmood = "x"\n', source="q.toml")
    assert str(error.value).startswith("q.toml, line 4: unknown key 'mood'")
