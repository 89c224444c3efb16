"""Loading persona TOML: the default persona, a round trip through a real file, and every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.persona import FACT_KEYS, Persona, PersonaError, default_persona, load_persona, parse_persona
from bot.persona.loader import MAX_FILE_BYTES

GOOD = """\
name = "Rex"
aliases = ["T-Rex"]
age = 31
style = "Gruff but kind."
voice = "ash"
greeting = "Yo."

[facts]
favorite_food = "steak"
favorite_color = "green"

[extra_facts]
pet_name = "Bitey"
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def fail(tmp_path: Path, text: str) -> PersonaError:
    path = write(tmp_path, text)
    with pytest.raises(PersonaError) as info:
        load_persona(path)
    assert str(path) in str(info.value)
    return info.value


def test_default_persona_is_complete() -> None:
    persona = default_persona()
    assert persona.name == "Aiko"
    assert persona.age > 0
    assert persona.style
    assert persona.greeting
    assert list(persona.facts) == list(FACT_KEYS)
    assert all(value.strip() for value in persona.facts.values())
    assert persona.extra_facts


def test_default_persona_file_ships_in_the_package() -> None:
    import bot.persona

    path = Path(bot.persona.__file__).with_name("default.toml")
    assert load_persona(path) == default_persona()


def test_good_file_round_trip(tmp_path: Path) -> None:
    persona = load_persona(write(tmp_path, GOOD))
    assert persona == Persona(
        name="Rex",
        age=31,
        style="Gruff but kind.",
        aliases=("T-Rex",),
        facts={"favorite_food": "steak", "favorite_color": "green"},
        extra_facts={"pet_name": "Bitey"},
        voice="ash",
        greeting="Yo.",
    )


def test_minimal_file_and_defaults(tmp_path: Path) -> None:
    persona = load_persona(write(tmp_path, 'name = "Min"\nage = 0\nstyle = "terse"\n'))
    assert persona.aliases == ()
    assert dict(persona.facts) == {}
    assert dict(persona.extra_facts) == {}
    assert persona.voice is None
    assert persona.greeting is None


def test_persona_is_frozen_and_hashable(tmp_path: Path) -> None:
    persona = load_persona(write(tmp_path, GOOD))
    with pytest.raises(AttributeError):
        persona.name = "Other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        persona.facts["favorite_food"] = "tofu"  # type: ignore[index]
    assert {persona: 1}[persona] == 1


def test_facts_are_kept_in_canonical_order(tmp_path: Path) -> None:
    text = 'name = "A"\nage = 1\nstyle = "s"\n[facts]\nfavorite_team = "x"\nhobby = "y"\n'
    assert list(load_persona(write(tmp_path, text)).facts) == ["hobby", "favorite_team"]


def test_utf8_bom_and_non_ascii_text(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes('\ufeffname = "Zoë"\nage = 20\nstyle = "très calme"\n'.encode())
    persona = load_persona(path)
    assert persona.name == "Zoë"
    assert persona.style == "très calme"


def test_strings_are_stripped(tmp_path: Path) -> None:
    persona = load_persona(write(tmp_path, 'name = "  Aiko "\nage = 3\nstyle = "s"\n'))
    assert persona.name == "Aiko"


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(PersonaError, match="not found") as info:
        load_persona(path)
    assert info.value.source == str(path)
    assert info.value.line is None


def test_directory_is_not_a_persona(tmp_path: Path) -> None:
    with pytest.raises(PersonaError, match="directory"):
        load_persona(tmp_path)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "A"\nage = 2\nstyle = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(PersonaError, match="UTF-8") as info:
        load_persona(path)
    assert info.value.line == 3
    assert f"{path}, line 3" in str(info.value)


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    with pytest.raises(PersonaError, match="larger than a persona file"):
        load_persona(path)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    error = fail(tmp_path, 'name = "A"\nage = 3\nstyle = "unterminated\n')
    assert error.line == 3
    assert "invalid TOML" in error.reason
    assert ", line 3:" in str(error)


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ('age = 3\nstyle = "s"\n', "'name'", None),
        ('name = "A"\nstyle = "s"\n', "'age'", None),
        ('name = "A"\nage = 3\n', "'style'", None),
        ('name = "A"\n\nage = "three"\nstyle = "s"\n', "'age'", 3),
        ('name = "A"\nage = true\nstyle = "s"\n', "'age'", 2),
        ('name = "A"\nage = 2.5\nstyle = "s"\n', "'age'", 2),
        ('name = "A"\nage = -1\nstyle = "s"\n', "'age'", 2),
        ('name = "A"\nage = 999\nstyle = "s"\n', "'age'", 2),
        ('name = 7\nage = 3\nstyle = "s"\n', "'name'", 1),
        ('name = "   "\nage = 3\nstyle = "s"\n', "'name'", 1),
        ('name = "A"\nage = 3\nstyle = "s"\naliases = "Ai"\n', "'aliases'", 4),
        ('name = "A"\nage = 3\nstyle = "s"\naliases = ["Ai", 3]\n', "'aliases'", 4),
        ('name = "A"\nage = 3\nstyle = "s"\nvoice = 1\n', "'voice'", 4),
        ('name = "A"\nage = 3\nstyle = "s"\nfacts = "many"\n', "'facts'", 4),
        ('name = "A"\nage = 3\nstyle = "s"\n[facts]\nhobby = "x"\nfavorite_food = 12\n', "'facts.favorite_food'", 6),
        ('name = "A"\nage = 3\nstyle = "s"\n[extra_facts]\npet = ["cat"]\n', "'extra_facts.pet'", 5),
        ('name = "A"\nage = 3\nstyle = "s"\nfacts.hobby = 5\n', "'facts.hobby'", 4),
        ('name = "A"\nage = 3\nstyle = "s"\n\n[facts.hobby]\nkind = "x"\n', "'facts.hobby'", 5),
        ('name = "A"\nage = 3\nstyle = "s"\n[[facts]]\nhobby = "x"\n', "'facts'", 4),
        ('name = "A"\nage = 3\nstyle = "s"\n[fact]\nhobby = "x"\n', "'fact'", 4),
    ],
)
def test_wrong_or_missing_key_names_key_and_line(tmp_path: Path, text: str, key: str, line: int | None) -> None:
    error = fail(tmp_path, text)
    assert key in error.reason
    assert error.line == line
    if line is not None:
        assert f", line {line}:" in str(error)


def test_same_key_in_another_table_is_not_blamed(tmp_path: Path) -> None:
    text = 'name = "A"\nage = 3\nstyle = "s"\n[extra_facts]\nhobby_notes = "x"\n[facts]\nhobby = 4\n'
    assert fail(tmp_path, text).line == 7


def test_unknown_top_level_key_suggests_the_right_one(tmp_path: Path) -> None:
    error = fail(tmp_path, 'name = "A"\nage = 3\nstyle = "s"\ngreting = "hi"\n')
    assert "unknown key 'greting'" in error.reason
    assert "did you mean 'greeting'" in error.reason
    assert error.line == 4


def test_british_fact_key_points_to_the_american_one(tmp_path: Path) -> None:
    error = fail(tmp_path, 'name = "A"\nage = 3\nstyle = "s"\n\n[facts]\nfavourite_colour = "red"\n')
    assert "'facts.favourite_colour'" in error.reason
    assert "did you mean 'favorite_color'" in error.reason
    assert "[extra_facts]" in error.reason
    assert error.line == 6


def test_extra_fact_may_not_shadow_a_standard_fact(tmp_path: Path) -> None:
    error = fail(tmp_path, 'name = "A"\nage = 3\nstyle = "s"\n[extra_facts]\nfavorite_food = "x"\n')
    assert "'extra_facts.favorite_food'" in error.reason
    assert error.line == 5


def test_parse_persona_accepts_text_and_names_its_source() -> None:
    assert parse_persona('name = "A"\nage = 3\nstyle = "s"\n').name == "A"
    with pytest.raises(PersonaError, match=r"^inline, line 1: invalid TOML"):
        parse_persona("name = = 1\n", source="inline")


def test_persona_rejects_unknown_fact_keys_in_code() -> None:
    with pytest.raises(ValueError, match="favourite_food"):
        Persona(name="A", age=1, style="s", facts={"favourite_food": "x"})


@pytest.mark.parametrize("depth", [100, 5000])
def test_deeply_nested_arrays_are_a_persona_error_not_a_crash(depth: int) -> None:
    text = 'name = "A"\nage = 1\nstyle = "s"\naliases = ' + "[" * depth + "]" * depth + "\n"
    with pytest.raises(PersonaError) as info:
        parse_persona(text, source="deep.toml")
    assert "deep.toml" in str(info.value)


@pytest.mark.parametrize(
    ("text", "reason", "line"),
    [
        ('name = "A\\u0007i"\nage = 1\nstyle = "s"\n', "'name' must not contain control characters (U+0007)", 1),
        ('name = "Ai\\nko"\nage = 1\nstyle = "s"\n', "'name' must not contain line breaks", 1),
        ('name = "A"\nage = 1\nstyle = "s"\naliases = ["x\\u001b[31m"]\n', "'aliases' must not contain control", 4),
        ('name = "A"\nage = 1\nstyle = "s"\n[facts]\nhobby = "go\\u0000"\n', "'facts.hobby' must not contain", 5),
        ('name = "A"\nage = 1\nstyle = "s\\u0085t"\n', "'style' must not contain control characters (U+0085)", 3),
        ('name = "A"\nage = 1\nstyle = "s"\n[extra_facts]\n"a\\u0001b" = "x"\n', "contains control characters", 4),
    ],
)
def test_control_characters_are_refused_with_the_key_and_line(text: str, reason: str, line: int) -> None:
    with pytest.raises(PersonaError) as info:
        parse_persona(text, source="p.toml")
    assert reason in info.value.reason and info.value.line == line


def test_line_breaks_and_tabs_are_fine_in_style_and_facts() -> None:
    text = 'name = "A"\nage = 1\nstyle = """Warm.\r\n\tShort sentences."""\n[facts]\nhobby = "go\\nchess"\n'
    persona = parse_persona(text)
    assert persona.style == "Warm.\r\n\tShort sentences." or persona.style == "Warm.\n\tShort sentences."
    assert persona.facts["hobby"] == "go\nchess"


def test_server_persona_limits_bound_every_text_and_count() -> None:
    from bot.persona.loader import SERVER_PERSONA_LIMITS as LIMITS

    def persona_text(**overrides: str) -> str:
        fields = {"name": '"A"', "age": "1", "style": '"s"', **overrides}
        return "\n".join(f"{key} = {value}" for key, value in fields.items()) + "\n"

    fine = persona_text(name='"' + "n" * 64 + '"', aliases="[" + ", ".join(['"a"'] * 10) + "]")
    assert parse_persona(fine, limits=LIMITS).name == "n" * 64
    cases = [
        (persona_text(name='"' + "n" * 65 + '"'), "'name' is 65 characters; at most 64 are allowed", 1),
        (persona_text(style='"' + "s" * 1501 + '"'), "'style' is 1,501 characters; at most 1,500", 3),
        (persona_text(greeting='"' + "g" * 301 + '"'), "'greeting' is 301 characters", 4),
        (persona_text(aliases="[" + ", ".join(['"a"'] * 11) + "]"), "'aliases' has 11 names; at most 10", 4),
        (persona_text(aliases='["' + "a" * 65 + '"]'), "'aliases' is 65 characters", 4),
        (persona_text() + '[facts]\nhobby = "' + "h" * 501 + '"\n', "'facts.hobby' is 501 characters", 5),
        (
            persona_text() + "[extra_facts]\n" + "".join(f'k{i} = "v"\n' for i in range(26)),
            "[extra_facts] has 26 facts; at most 25",
            4,
        ),
        (persona_text() + "[extra_facts]\n" + "k" * 49 + ' = "v"\n', "characters; at most 48 are allowed", 5),
    ]
    for text, reason, line in cases:
        with pytest.raises(PersonaError) as info:
            parse_persona(text, source="server", limits=LIMITS)
        assert reason in info.value.reason and info.value.line == line, (reason, info.value)
        parse_persona(text)  # an operator's file has no such bounds
    with pytest.raises(PersonaError, match="larger than a persona file may be"):
        parse_persona(persona_text() + "# " + "x" * LIMITS.max_bytes, limits=LIMITS)
