"""Who said a user turn: the speakers heard during it, as one label for transcripts and for the model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

SEVERAL = "several"
SOMEONE = "someone"


def speaker_label(speaker_ids: Iterable[int], names: Mapping[int, str], hidden: Iterable[int] = ()) -> str:
    """The display name of the one speaker, ``several`` when more than one spoke, ``someone`` when none is known.

    Speakers in ``hidden`` (opted out of transcripts) are shown as ``(someone)``.
    """
    ids = sorted(set(speaker_ids))
    if not ids:
        return SOMEONE
    if len(ids) > 1:
        return SEVERAL
    if ids[0] in set(hidden):
        return f"({SOMEONE})"
    return names.get(ids[0], SOMEONE)
