"""The local server's voice: espeak-ng when it works, else the tone, and a sentence saying which."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bot.fakeserver.voice import TONE_MS, Voice, tone
from tests.test_first_run import needs_espeak


@pytest.mark.parametrize("program", ["/bin/false", "/nonexistent/espeak-ng"], ids=["fails", "missing"])
def test_a_broken_espeak_falls_back_to_the_tone(program: str, caplog: pytest.LogCaptureFixture) -> None:
    assert Voice(espeak=program).render("hello") == tone()
    assert "espeak-ng failed" in caplog.text


def test_each_voice_says_what_it_is() -> None:
    assert Voice(espeak=None).describe().startswith("answers are a 440 Hz tone (espeak-ng is not installed; ")
    assert Voice(espeak="/usr/bin/espeak-ng").describe() == "answers are spoken by espeak-ng"


@needs_espeak
def test_espeak_speech_is_24_khz_mono_of_a_plausible_length() -> None:
    voice = Voice.find()
    assert voice.espeak == shutil.which("espeak-ng")
    pcm16 = voice.render("My favorite food is spicy miso ramen.")
    samples = np.frombuffer(pcm16, dtype="<i2") / 32768.0
    assert 1.5 < len(samples) / 24_000 < 4.0 and len(samples) != 24 * TONE_MS
    assert 0.02 < float(np.sqrt(np.mean(samples**2))) < 0.5
