"""Answering "what is your favourite food?": match a free-text query to the persona's facts, offline.

The query is split into words, British spellings are mapped to American ones and each word is lightly stemmed
(plurals, ``-ing``, ``-ed``, a final ``e``), so "favourite colours", "what do you like eating" and "your teams"
all find their fact. Each topic has trigger phrases; where two matches cover the same words, the longer one wins
(so "your pet's name" finds an extra fact ``pet_name``, not the persona's own name). Facts are never invented: a
query that matches nothing gets an error listing the topics there are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.persona.model import FACT_KEYS, Persona

#: Queries longer than this are cut: a topic fits in a few words.
MAX_QUERY_CHARS = 500

_BRITISH = {
    "favourite": "favorite",
    "favourites": "favorites",
    "fave": "favorite",
    "fav": "favorite",
    "colour": "color",
    "colours": "colors",
    "flavour": "flavor",
    "flavours": "flavors",
    "programme": "program",
    "programmes": "programs",
}

#: Trigger phrases of the built-in topics. Single words are deliberately specific: "language" alone is not a
#: programming question ("what language do you speak"), "old" alone is not an age question.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "name": ("name", "nickname", "call you", "you called", "who are you", "who is this", "introduce yourself"),
    "age": ("age", "aged", "how old", "year old", "born", "birth year"),
    "hobby": (
        "hobby",
        "pastime",
        "free time",
        "spare time",
        "for fun",
        "like to do",
        "love to do",
        "enjoy doing",
        "thing to do",
        "weekend",
        "your interest",
        "are you into",
    ),
    "favorite_food": (
        "food",
        "eat",
        "dish",
        "meal",
        "cuisine",
        "snack",
        "breakfast",
        "lunch",
        "dinner",
        "hungry",
        "cook",
        "flavor",
        "foodie",
    ),
    "favorite_color": ("color",),
    "favorite_music": ("music", "song", "band", "singer", "musician", "album", "listen", "playlist", "tune"),
    "favorite_movie": ("movie", "film", "cinema", "flick"),
    "favorite_game": ("game", "gamer", "gaming", "video game", "console"),
    "favorite_sport": ("sport", "sporty", "athletic", "exercise", "workout"),
    "favorite_team": ("team", "club", "support", "supporter", "root for", "cheer for"),
    "favorite_player": ("player", "athlete", "sportsman", "sportswoman", "footballer"),
    "favorite_programming_language": (
        "programming",
        "program",
        "programmer",
        "code",
        "coder",
        "coding",
        "developer",
        "software",
        "programming language",
    ),
}
#: Phrases asking for everything at once.
_ALL_TRIGGERS = (
    "everything",
    "about yourself",
    "all about you",
    "tell me about you",
    "all your facts",
    "all facts",
    "something about you",
)
#: Extra words that find common free-form facts (keyed by a stemmed word of the fact's key).
_EXTRA_SYNONYMS: dict[str, tuple[str, ...]] = {
    "hometown": (
        "where are you from",
        "where do you come from",
        "grow up",
        "grew up",
        "home town",
        "where you live",
        "where do you live",
    ),
    "pet": ("animal", "dog", "cat"),
    "job": ("work", "occupation", "profession", "career", "for a living"),
    "birthday": ("birth", "born"),
    "language": ("speak",),
}
#: Words in an extra fact's key that do not identify it ("favorite_anime" is found by "anime"). Stemmed below.
_GENERIC_WORDS = "favorite my your the a an of in on to and or best most thing do you i is what who"


def stem(word: str) -> str:
    """A light stem of one lower-case word: ``"hobbies"`` → ``"hobbi"``, ``"gaming"`` and ``"games"`` → ``"gam"``.

    Only ever compared with other stems, so it need not be a real word; it just has to map inflections together.
    """
    word = _BRITISH.get(word, word)
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-2]  # hobbies → hobbi, movies → movi
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # programming → program, swimming → swim
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    elif word.endswith("y") and len(word) > 3 and word[-2] not in "aeiou":
        word = word[:-1] + "i"  # hobby → hobbi, like hobbies
    return word


def words(text: str) -> list[str]:
    """The stemmed words of ``text``; ``_`` and ``-`` separate words, a trailing ``'s`` is dropped."""
    found = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("’", "'"))
    return [stem(w.split("'", 1)[0]) for w in found]


_Phrase = tuple[str, ...]


def _phrases(texts: Iterable[str]) -> tuple[_Phrase, ...]:
    return tuple(tuple(words(t)) for t in texts)


_TRIGGER_PHRASES: dict[str, tuple[_Phrase, ...]] = {topic: _phrases(texts) for topic, texts in _TRIGGERS.items()}
_ALL_PHRASES = _phrases(_ALL_TRIGGERS)
_EXTRA_PHRASES: dict[str, tuple[_Phrase, ...]] = {stem(w): _phrases(texts) for w, texts in _EXTRA_SYNONYMS.items()}
_GENERIC = frozenset(words(_GENERIC_WORDS))


@dataclass(frozen=True, slots=True)
class _Match:
    topic: str
    span: frozenset[int]
    builtin: bool


def _phrase_spans(query: list[str], phrase: _Phrase) -> Iterable[frozenset[int]]:
    size = len(phrase)
    for start in range(len(query) - size + 1):
        if tuple(query[start : start + size]) == phrase:
            yield frozenset(range(start, start + size))


def _builtin_matches(query: list[str]) -> list[_Match]:
    found: list[_Match] = []
    for topic, phrases in _TRIGGER_PHRASES.items():
        found += [_Match(topic, span, True) for p in phrases for span in _phrase_spans(query, p)]
    found += [_Match("*", span, True) for p in _ALL_PHRASES for span in _phrase_spans(query, p)]
    # a matched topic also claims the words of its own key: in "what language do you code in", "language" is
    # about programming, so an extra fact "languages_spoken" must not match through it
    for topic in {m.topic for m in found} - {"*"}:
        key_words = set(words(topic)) - _GENERIC
        found += [_Match(topic, frozenset([i]), True) for i, w in enumerate(query) if w in key_words]
    return found


def _extra_matches(query: list[str], keys: Iterable[str]) -> list[_Match]:
    found: list[_Match] = []
    for key in keys:
        key_words = list(dict.fromkeys(words(key)))
        significant = [w for w in key_words if w not in _GENERIC] or key_words
        hits = [i for i, w in enumerate(query) if w in significant]
        if len({query[i] for i in hits}) == len(significant) and hits:
            found.append(_Match(key, frozenset(hits), False))  # every word of the key: the strongest match
        else:
            found += [_Match(key, frozenset([i]), False) for i in hits]
        for word in significant:
            for phrase in _EXTRA_PHRASES.get(word, ()):
                found += [_Match(key, span, False) for span in _phrase_spans(query, phrase)]
    return found


def _resolve(matches: list[_Match]) -> list[str]:
    """The topics whose matches are not wholly inside a longer (or, on a tie, built-in) match of another topic."""
    ordered = sorted(matches, key=lambda m: (-len(m.span), not m.builtin))
    claimed: dict[int, str] = {}
    accepted: list[str] = []
    for match in ordered:
        if match.topic not in accepted:
            if all(i in claimed and claimed[i] != match.topic for i in match.span):
                continue
            accepted.append(match.topic)
        for i in match.span:
            claimed.setdefault(i, match.topic)
    return accepted


def known_topics(persona: Persona) -> list[str]:
    """The topics :func:`get_your_info` can answer for ``persona``: name, age, the set facts, the extra facts."""
    return ["name", "age", *persona.facts, *persona.extra_facts]


def _value(persona: Persona, topic: str) -> dict[str, Any]:
    if topic == "name":
        return {"name": persona.name, "aliases": list(persona.aliases)} if persona.aliases else {"name": persona.name}
    if topic == "age":
        return {"age": persona.age}
    if topic in persona.facts:
        return {topic: persona.facts[topic]}
    if topic in persona.extra_facts:
        return {topic: persona.extra_facts[topic]}
    return {}


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def get_your_info(persona: Persona, query: str) -> str:
    """The persona's facts about ``query`` as compact JSON, e.g. ``{"favorite_food":"ramen"}``.

    Several topics in one query give several keys. A topic the persona has no value for is listed under
    ``"no_information"``; a query matching no topic (or an empty one) gives
    ``{"error":"unknown topic","known_topics":[...]}``. Never raises for any string.
    """
    query_words = words(query[:MAX_QUERY_CHARS])
    matches = _builtin_matches(query_words) + _extra_matches(query_words, persona.extra_facts)
    topics = _resolve(matches)
    if "*" in topics:
        topics = known_topics(persona)
    order = {t: i for i, t in enumerate(["name", "age", *FACT_KEYS, *persona.extra_facts])}
    topics.sort(key=order.__getitem__)
    answer: dict[str, Any] = {}
    missing: list[str] = []
    for topic in topics:
        value = _value(persona, topic)
        answer.update(value)
        if not value:
            missing.append(topic)
    if not answer:
        error = "unknown topic" if not missing else f"no information about {', '.join(missing)}"
        return _dump({"error": error, "known_topics": known_topics(persona)})
    if missing:
        answer["no_information"] = missing
    return _dump(answer)
