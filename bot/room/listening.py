"""Listening modes for a shared room: which turns the persona answers and whose audio is sent.

Three modes per guild (stored as their string values in ``GuildSettings.mode``):

* ``always``: every committed user turn is answered.
* ``name``: a turn is answered only when it addresses the persona by name or alias (:func:`is_addressed`); other
  turns still enter the conversation as context.
* ``push-to-talk``: only the audio of users who hold (or toggled on) push-to-talk is sent (:class:`PushToTalk`), and
  every turn that reaches the model is answered.

Name matching (:func:`is_addressed`) works on normalised word tokens: text is Unicode-decomposed, combining marks
(accents) are dropped, it is case-folded, and every run of characters that is not a letter or digit separates words.
So "Nova," "hey nova", "NOVA?", "Nóva" and "nova's" (tokens ``nova`` ``s``) address *Nova*, while "novak" and
"casanova" do not. A multi-word name ("Captain Nova") must appear as the same consecutive words.

Speech-to-text often misspells names, so a name word of at least :data:`FUZZY_MIN_LETTERS` letters also matches a
transcript word at edit distance one (one insertion, deletion, substitution, or swap of neighbours) that starts with
the same letter: "Aurora" matches "Arora" and "Jasmine" matches "Jazmine", but "Mabel" does not match "label".
Shorter names match exactly only: at four letters or fewer, one edit turns a name into a common word (Nova/nova,
Sage/page). Names in scripts written without spaces between words match only as whole space-separated words.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from enum import StrEnum

_log = logging.getLogger(__name__)

#: Name words this long or longer tolerate one transcription error (see the module docstring).
FUZZY_MIN_LETTERS = 5

_WORD = re.compile(r"[^\W_]+")


class ListeningMode(StrEnum):
    """When the persona answers; the values are what the settings store holds."""

    ALWAYS = "always"
    NAME = "name"
    PUSH_TO_TALK = "push-to-talk"

    @classmethod
    def parse(cls, value: str) -> ListeningMode:
        """The mode named ``value`` (case and surrounding spaces ignored); :class:`ValueError` with the choices."""
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(mode.value for mode in cls)
            raise ValueError(f"unknown listening mode {value!r}; choose one of {choices}") from None


def words(text: str) -> list[str]:
    """``text`` as normalised word tokens: accents removed, case-folded, split on anything but letters and digits."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _WORD.findall(stripped.casefold())


def _within_one_edit(word: str, name_word: str) -> bool:
    """True when ``word`` is at most one edit (insert, delete, substitute, swap neighbours) from ``name_word``."""
    if word == name_word:
        return True
    length_difference = len(word) - len(name_word)
    if abs(length_difference) > 1:
        return False
    if length_difference == 0:
        mismatches = [i for i, (a, b) in enumerate(zip(word, name_word, strict=True)) if a != b]
        if len(mismatches) == 1:
            return True
        if len(mismatches) == 2:
            i, j = mismatches
            return j == i + 1 and word[i] == name_word[j] and word[j] == name_word[i]
        return False
    shorter, longer = (word, name_word) if length_difference < 0 else (name_word, word)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def _word_matches(word: str, name_word: str, fuzzy: bool) -> bool:
    if word == name_word:
        return True
    if not fuzzy or len(name_word) < FUZZY_MIN_LETTERS or not word or word[0] != name_word[0]:
        return False
    return _within_one_edit(word, name_word)


def _normalised_names(names: Iterable[str]) -> list[list[str]]:
    return [tokens for tokens in (words(name) for name in names) if tokens]


def is_addressed(transcript: str, names: Sequence[str], *, fuzzy: bool = True) -> bool:
    """Whether ``transcript`` addresses the persona by one of ``names`` (its name and aliases).

    Args:
        transcript: The user turn's transcript.
        names: The persona's name and aliases; empty or blank ones are ignored.
        fuzzy: Allow one transcription error in name words of :data:`FUZZY_MIN_LETTERS` or more letters.
    """
    if isinstance(names, str):
        raise TypeError("names must be a sequence of names, not one string")
    tokens = words(transcript)
    for name_words in _normalised_names(names):
        span = len(name_words)
        for start in range(len(tokens) - span + 1):
            window = tokens[start : start + span]
            if all(_word_matches(word, name_word, fuzzy) for word, name_word in zip(window, name_words, strict=True)):
                return True
    return False


def suggest_name_mode(humans_present: int, mode: ListeningMode) -> bool:
    """True when the bot should suggest ``name`` mode: two or more humans are present and it answers everything."""
    return humans_present >= 2 and mode == ListeningMode.ALWAYS


def should_answer(mode: ListeningMode, transcript: str, names: Sequence[str]) -> bool:
    """Whether the persona answers this committed user turn in ``mode``.

    In push-to-talk mode only holders' audio reaches the model (see :func:`should_send_audio`), so every turn that
    gets here is a holder's and is answered.
    """
    if mode == ListeningMode.NAME:
        return is_addressed(transcript, names)
    return True


class PushToTalk:
    """Per-user push-to-talk state: who is currently "on the air".

    ``toggle`` latches a user on or off (a button on the status message); ``hold``/``release`` open and close it
    momentarily (a held control). Both act on the same per-user state, so a release closes a toggled-on user too.
    """

    def __init__(self) -> None:
        self._open: set[int] = set()

    def toggle(self, user_id: int) -> bool:
        """Flip the user's state; returns whether they are now open."""
        if user_id in self._open:
            self._open.discard(user_id)
        else:
            self._open.add(user_id)
        _log.debug("push-to-talk %s for user %s", "on" if user_id in self._open else "off", user_id)
        return user_id in self._open

    def hold(self, user_id: int) -> None:
        self._open.add(user_id)

    def release(self, user_id: int) -> None:
        self._open.discard(user_id)

    def forget(self, user_id: int) -> None:
        """The user left the channel: they are no longer open."""
        self._open.discard(user_id)

    def retain(self, present: Collection[int]) -> None:
        """Only users in ``present`` (the channel's members) keep the floor: whoever left has given it up, so a
        user who comes back starts closed."""
        self._open.intersection_update(present)

    def clear(self) -> None:
        self._open.clear()

    def is_open(self, user_id: int) -> bool:
        return user_id in self._open

    def holders(self) -> frozenset[int]:
        return frozenset(self._open)


def should_send_audio(mode: ListeningMode, user_id: int, push_to_talk: PushToTalk) -> bool:
    """Whether ``user_id``'s audio goes to the model: always, except in push-to-talk mode for users not holding."""
    return mode != ListeningMode.PUSH_TO_TALK or push_to_talk.is_open(user_id)
