"""get_your_info: many phrasings find the right fact; unrelated questions find none; nothing is ever invented."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.persona import Persona, default_persona, get_your_info, known_topics
from bot.persona.lookup import MAX_QUERY_CHARS, stem, words

PERSONA = Persona(
    name="Aiko",
    aliases=("Ai",),
    age=24,
    style="warm",
    facts={
        "hobby": "baking",
        "favorite_food": "ramen",
        "favorite_color": "teal",
        "favorite_music": "city pop",
        "favorite_movie": "Spirited Away",
        "favorite_game": "Stardew Valley",
        "favorite_sport": "football",
        "favorite_team": "FC Barcelona",
        "favorite_player": "Aitana Bonmatí",
        "favorite_programming_language": "Python",
    },
    extra_facts={
        "hometown": "Yokohama",
        "pet_name": "Mochi",
        "favorite_anime": "Mushishi",
        "languages_spoken": "ja, en",
    },
)


def ask(query: str, persona: Persona = PERSONA) -> dict[str, Any]:
    answer = json.loads(get_your_info(persona, query))
    assert isinstance(answer, dict)
    return answer


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("favorite food", ["favorite_food"]),
        ("favorite_food", ["favorite_food"]),
        ("what do you like to eat", ["favorite_food"]),
        ("What's your favourite dish?", ["favorite_food"]),
        ("best meal ever", ["favorite_food"]),
        ("how old are you", ["age"]),
        ("your age", ["age"]),
        ("when were you born", ["age"]),
        ("your team", ["favorite_team"]),
        ("which club do you support", ["favorite_team"]),
        ("what teams do you root for", ["favorite_team"]),
        ("what's your name", ["name", "aliases"]),
        ("what should we call you", ["name", "aliases"]),
        ("who are you", ["name", "aliases"]),
        ("hobby", ["hobby"]),
        ("hobbies", ["hobby"]),
        ("what do you do in your free time", ["hobby"]),
        ("what are your interests", ["hobby"]),
        ("what are you into", ["hobby"]),
        ("what do you do for fun", ["hobby"]),
        ("what language do you code in", ["favorite_programming_language"]),
        ("favorite programming language", ["favorite_programming_language"]),
        ("coding", ["favorite_programming_language"]),
        ("favourite colour", ["favorite_color"]),
        ("FAVORITE COLORS", ["favorite_color"]),
        ("what music do you listen to", ["favorite_music"]),
        ("favorite songs or bands", ["favorite_music"]),
        ("favorite film", ["favorite_movie"]),
        ("best movies", ["favorite_movie"]),
        ("what video games do you play", ["favorite_game"]),
        ("gaming", ["favorite_game"]),
        ("what sport do you like", ["favorite_sport"]),
        ("favorite player", ["favorite_player"]),
        ("which athlete do you admire", ["favorite_player"]),
        ("favorite movie and favorite game", ["favorite_movie", "favorite_game"]),
        ("food, colour and age", ["age", "favorite_food", "favorite_color"]),
        ("where are you from", ["hometown"]),
        ("hometown", ["hometown"]),
        ("what's your pet's name", ["pet_name"]),
        ("do you have a pet", ["pet_name"]),
        ("favorite anime", ["favorite_anime"]),
        ("what languages do you speak", ["languages_spoken"]),
        ("what programming language do you use", ["favorite_programming_language"]),
    ],
)
def test_phrasings_find_their_facts(query: str, keys: list[str]) -> None:
    assert sorted(ask(query)) == sorted(keys)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "?!",
        "what's the weather like",
        "tell me a joke",
        "what time is it",
        "what is the capital of France",
        "what language do you speak in general",  # "language" alone is not about programming
        "are you an agent",  # "agent" contains "age"
        "that is a bold claim",  # "bold" contains "old"
        "do you like it",
        "favorite",
        "teammates",  # not "team"
        "that is interesting",  # "interesting" is not "your interests"
        "your birthday",  # a fact this persona does not have: not guessed from the age
        "asdfghjkl",
    ],
)
def test_unrelated_queries_match_nothing(query: str) -> None:
    answer = ask(query, Persona(name="B", age=5, style="s", facts={"favorite_food": "x"}))
    assert answer == {"error": "unknown topic", "known_topics": ["name", "age", "favorite_food"]}


def test_unknown_topic_lists_every_known_topic() -> None:
    answer = ask("the weather")
    assert answer["error"] == "unknown topic"
    assert answer["known_topics"] == known_topics(PERSONA)
    assert set(answer["known_topics"]) >= {"name", "age", "favorite_food", "hometown", "pet_name"}


def test_values_come_from_the_persona_unchanged() -> None:
    assert ask("favorite food") == {"favorite_food": "ramen"}
    assert ask("how old are you") == {"age": 24}
    assert ask("name") == {"name": "Aiko", "aliases": ["Ai"]}
    assert ask("name", Persona(name="Solo", age=1, style="s")) == {"name": "Solo"}
    assert ask("favorite player") == {"favorite_player": "Aitana Bonmatí"}


def test_answer_is_compact_json_with_unicode() -> None:
    text = get_your_info(PERSONA, "favorite player")
    assert text == '{"favorite_player":"Aitana Bonmatí"}'


def test_a_fact_the_persona_lacks_is_not_invented() -> None:
    sparse = Persona(name="S", age=9, style="s", facts={"favorite_food": "soup"})
    answer = ask("favorite team", sparse)
    assert answer["error"] == "no information about favorite_team"
    assert answer["known_topics"] == ["name", "age", "favorite_food"]
    assert ask("favorite team and food", sparse) == {"favorite_food": "soup", "no_information": ["favorite_team"]}


def test_everything_about_yourself() -> None:
    answer = ask("tell me about yourself")
    assert answer["name"] == "Aiko"
    assert answer["age"] == 24
    assert {k: answer[k] for k in PERSONA.facts} == dict(PERSONA.facts)
    assert {k: answer[k] for k in PERSONA.extra_facts} == dict(PERSONA.extra_facts)


def test_every_answer_holds_only_true_facts() -> None:
    truth: dict[str, Any] = {"name": "Aiko", "aliases": ["Ai"], "age": 24, **PERSONA.facts, **PERSONA.extra_facts}
    for query in ["food", "team and player", "pet", "about yourself", "what do you do for fun", "music movie game"]:
        for key, value in ask(query).items():
            assert truth[key] == value, (query, key)


@pytest.mark.parametrize("query", ["favorite", "what's your favourite", "the best one", "what do you like most"])
def test_generic_words_do_not_find_extra_facts(query: str) -> None:
    assert ask(query)["error"] == "unknown topic"


def test_extra_fact_of_only_generic_words_is_still_found() -> None:
    persona = Persona(name="G", age=2, style="s", extra_facts={"my_best_thing": "kites"})
    assert ask("best thing", persona) == {"my_best_thing": "kites"}


def test_extra_synonyms_apply_to_inflected_keys() -> None:
    persona = Persona(name="L", age=2, style="s", extra_facts={"languages": "ja", "pets": "a fox"})
    assert ask("what do you speak", persona) == {"languages": "ja"}
    assert ask("any animals", persona) == {"pets": "a fox"}


def test_extra_fact_found_by_every_word_of_its_key() -> None:
    persona = Persona(name="E", age=2, style="s", extra_facts={"lucky_number": "7", "first-concert": "Perfume"})
    assert ask("lucky number", persona) == {"lucky_number": "7"}
    assert ask("your first concert", persona) == {"first-concert": "Perfume"}
    assert ask("what number do you like", persona) == {"lucky_number": "7"}


def test_huge_query_is_cut_not_crashed() -> None:
    answer = ask("x " * MAX_QUERY_CHARS + "favorite food")
    assert answer["error"] == "unknown topic"
    assert ask("favorite food " + "x " * 10_000) == {"favorite_food": "ramen"}


def test_default_persona_answers_its_own_topics() -> None:
    persona = default_persona()
    for topic in known_topics(persona):
        answer = ask(topic, persona)
        assert topic in answer, topic


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("hobbies", "hobbi"),
        ("hobby", "hobbi"),
        ("movies", "movi"),
        ("movie", "movi"),
        ("cities", "citi"),
        ("city", "citi"),
        ("playing", "play"),
        ("games", "gam"),
        ("gaming", "gam"),
        ("game", "gam"),
        ("programming", "program"),
        ("eating", "eat"),
        ("colours", "color"),
        ("favourite", "favorit"),
        ("dishes", "dish"),
        ("age", "age"),
        ("ages", "age"),
        ("calling", "call"),
        ("supported", "support"),
        ("need", "need"),
        ("class", "class"),
    ],
)
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_words_split_keys_and_drop_possessives() -> None:
    assert words("favorite_food") == ["favorit", "food"]
    assert words("Player's  NAME!") == ["player", "nam"]
    assert words("first-concert") == ["first", "concert"]
    assert words("") == []
