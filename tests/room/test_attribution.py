from __future__ import annotations

from bot.room.attribution import speaker_label

NAMES = {5: "alice", 6: "bob"}


def test_one_several_or_nobody() -> None:
    assert speaker_label([5], NAMES) == "alice"
    assert speaker_label([5, 5], NAMES) == "alice"
    assert speaker_label([5, 6], NAMES) == "several"
    assert speaker_label([], NAMES) == "someone"
    assert speaker_label([9], NAMES) == "someone"


def test_opted_out_speakers_are_hidden() -> None:
    assert speaker_label([6], NAMES, hidden=[6]) == "(someone)"
