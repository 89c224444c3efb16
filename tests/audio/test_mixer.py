from __future__ import annotations

import numpy as np
import pytest

from bot.audio.formats import DISCORD_FRAME_BYTES
from bot.audio.mixer import mix_pcm16
from tests.audio.conftest import as_array, pcm16, tone


def test_two_speakers_are_summed() -> None:
    a = tone(300.0, 0.02, 48_000, amplitude=1000.0)
    b = tone(700.0, 0.02, 48_000, amplitude=2000.0)
    mixed = as_array(mix_pcm16([pcm16(a, 2), pcm16(b, 2)]), channels=2)
    assert len(mixed) * 4 == DISCORD_FRAME_BYTES
    expected = np.rint(a) + np.rint(b)
    assert np.array_equal(mixed[:, 0], expected) and np.array_equal(mixed[:, 1], expected)


@pytest.mark.parametrize("speakers", [2, 3])
def test_loud_in_phase_speakers_saturate_instead_of_wrapping(speakers: int) -> None:
    loud = pcm16(tone(440.0, 0.02, 48_000, amplitude=30_000.0), 2)
    mixed = as_array(mix_pcm16([loud] * speakers), channels=2)
    source = as_array(loud, channels=2)
    assert mixed.max() == 32767 and mixed.min() == -32768
    assert (np.sign(mixed) == np.sign(source)).all()  # a wrapped sum would flip sign


def test_one_frame_passes_through() -> None:
    frame = pcm16(tone(440.0, 0.02, 48_000), 2)
    assert mix_pcm16([frame]) == frame


@pytest.mark.parametrize(
    ("frames", "message"),
    [([], "at least one"), ([b"\0" * 4, b"\0" * 6], "same length"), ([b"\0" * 3], "even number")],
)
def test_bad_input_is_a_clear_error(frames: list[bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mix_pcm16(frames)
