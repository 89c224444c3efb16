"""Listening modes: name matching, the name-mode suggestion, push-to-talk, and the answer/send decisions."""

from __future__ import annotations

import pytest

from bot.room.listening import (
    FUZZY_MIN_LETTERS,
    ListeningMode,
    PushToTalk,
    is_addressed,
    should_answer,
    should_send_audio,
    suggest_name_mode,
    words,
)
from bot.store import LISTENING_MODES

NOVA = ["Nova"]


def test_modes_are_exactly_what_the_settings_store_accepts() -> None:
    assert tuple(mode.value for mode in ListeningMode) == LISTENING_MODES
    assert ListeningMode("push-to-talk") is ListeningMode.PUSH_TO_TALK
    stored: str = "name"
    assert stored == ListeningMode.NAME  # a stored string compares equal to the enum


def test_parse_is_forgiving_about_case_and_clear_about_bad_values() -> None:
    assert ListeningMode.parse("  Push-To-Talk ") is ListeningMode.PUSH_TO_TALK
    with pytest.raises(ValueError, match="choose one of always, name, push-to-talk"):
        ListeningMode.parse("loud")


def test_words_normalise_accents_case_and_punctuation() -> None:
    assert words("Hé, NÓVA’s  café-au-lait!") == ["he", "nova", "s", "cafe", "au", "lait"]
    assert words("Straße") == ["strasse"]
    assert words("  ...  ") == []


@pytest.mark.parametrize(
    "transcript",
    [
        "Nova, what time is it?",
        "hey nova",
        "NOVA?",
        "is that nova's idea",
        "is that nova’s idea",  # typographic apostrophe
        "Nóva, play something",
        "ok... nova!",
        "nova",
        "what do you think, Nova",
        "so -- nova -- can you help",
        "Nova-chan, hi",
    ],
)
def test_the_name_as_a_word_addresses_the_persona(transcript: str) -> None:
    assert is_addressed(transcript, NOVA)


@pytest.mark.parametrize(
    "transcript",
    [
        "novak is late again",
        "a casanova of a man",
        "supernova remnants",
        "novas and stars",
        "no va",
        "nothing to see here",
        "",
        "   ",
        "nava, come here",  # four letters: no fuzzy match, one edit away is a different word
    ],
)
def test_other_words_do_not(transcript: str) -> None:
    assert not is_addressed(transcript, NOVA)


def test_multi_word_names_need_the_words_in_order_and_adjacent() -> None:
    names = ["Captain Nova"]
    assert is_addressed("Captain Nova, report!", names)
    assert is_addressed("hey captain  nova", names)
    assert not is_addressed("Nova, captain of the ship", names)
    assert not is_addressed("captain, is nova here", names)
    assert not is_addressed("captain", names)


def test_aliases_any_of_them_counts_and_blank_ones_are_ignored() -> None:
    names = ["Nova", "", "  ", "Assistant", "N.O.V.A."]
    assert is_addressed("assistant, are you there", names)
    assert is_addressed("N O V A help", names)
    assert not is_addressed("hello everyone", names)
    assert not is_addressed("anything", [])
    assert not is_addressed("anything", ["", "?!"])


@pytest.mark.parametrize(
    ("name", "transcript"),
    [
        ("Aurora", "arora, what's up"),  # a deleted letter
        ("Aurora", "aurorra tell me"),  # an inserted letter
        ("Jasmine", "jazmine, hi"),  # a substituted letter
        ("Aurora", "auorra?"),  # two neighbours swapped
        ("Captain Aurora", "captain arora"),
    ],
)
def test_long_names_tolerate_one_transcription_error(name: str, transcript: str) -> None:
    assert len(words(name)[-1]) >= FUZZY_MIN_LETTERS
    assert is_addressed(transcript, [name])
    assert not is_addressed(transcript, [name], fuzzy=False)


@pytest.mark.parametrize(
    ("name", "transcript"),
    [
        ("Mabel", "put a label on it"),  # one edit, but a different first letter
        ("Aurora", "arrorra"),  # two edits
        ("Aurora", "aura"),  # two letters missing
        ("Sage", "page me later"),  # short names match exactly only
        ("Sage", "sago pudding"),
        ("Nova", "novak"),
    ],
)
def test_fuzzy_matching_stays_narrow(name: str, transcript: str) -> None:
    assert not is_addressed(transcript, [name])


def test_a_single_string_for_names_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="sequence of names"):
        is_addressed("nova", "Nova")


@pytest.mark.parametrize(
    ("humans", "mode", "expected"),
    [
        (0, ListeningMode.ALWAYS, False),
        (1, ListeningMode.ALWAYS, False),
        (2, ListeningMode.ALWAYS, True),
        (5, ListeningMode.ALWAYS, True),
        (3, ListeningMode.NAME, False),
        (3, ListeningMode.PUSH_TO_TALK, False),
    ],
)
def test_name_mode_is_suggested_for_two_or_more_humans_answering_everything(
    humans: int, mode: ListeningMode, expected: bool
) -> None:
    assert suggest_name_mode(humans, mode) is expected


def test_should_answer_per_mode() -> None:
    chat = "did you watch the game yesterday"
    addressed = "nova, who won the game yesterday"
    assert should_answer(ListeningMode.ALWAYS, chat, NOVA)
    assert not should_answer(ListeningMode.NAME, chat, NOVA)
    assert should_answer(ListeningMode.NAME, addressed, NOVA)
    assert should_answer(ListeningMode.PUSH_TO_TALK, chat, NOVA)
    assert not should_answer(ListeningMode("name"), chat, NOVA)


def test_push_to_talk_toggles_holds_and_releases_per_user() -> None:
    ptt = PushToTalk()
    assert ptt.holders() == frozenset() and not ptt.is_open(1)
    assert ptt.toggle(1) is True
    assert ptt.is_open(1) and not ptt.is_open(2)
    ptt.hold(2)
    assert ptt.holders() == frozenset({1, 2})
    ptt.release(2)
    ptt.release(3)  # releasing someone who never held is harmless
    assert ptt.holders() == frozenset({1})
    assert ptt.toggle(1) is False
    assert not ptt.is_open(1)
    ptt.hold(4)
    ptt.hold(4)
    assert ptt.toggle(4) is False  # holding twice is one state, not a count
    ptt.hold(5)
    ptt.forget(5)
    ptt.hold(6)
    snapshot = ptt.holders()
    ptt.clear()
    assert snapshot == frozenset({6}) and ptt.holders() == frozenset()


def test_only_holders_audio_is_sent_in_push_to_talk_mode() -> None:
    ptt = PushToTalk()
    ptt.hold(1)
    assert should_send_audio(ListeningMode.PUSH_TO_TALK, 1, ptt)
    assert not should_send_audio(ListeningMode.PUSH_TO_TALK, 2, ptt)
    assert should_send_audio(ListeningMode.ALWAYS, 2, ptt)
    assert should_send_audio(ListeningMode.NAME, 2, ptt)


def test_retain_closes_everyone_who_left() -> None:
    ptt = PushToTalk()
    for user_id in (1, 2, 3):
        ptt.toggle(user_id)
    ptt.retain({1, 3, 4})
    assert ptt.holders() == frozenset({1, 3})
    ptt.retain(dict.fromkeys([3]).keys())  # any collection of ids, e.g. a mapping's keys
    assert ptt.holders() == frozenset({3})
