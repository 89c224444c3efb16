"""The committed fixtures are what tests/fixtures/README.md says they are, and stay small."""

from __future__ import annotations

import numpy as np

from bot.audio.wav import read_wav
from tests.audio.conftest import FIXTURES

FIXTURE_BUDGET_BYTES = 1_000_000


def test_fixtures_stay_within_the_size_budget() -> None:
    total = sum(path.stat().st_size for path in FIXTURES.iterdir() if path.is_file())
    assert total < FIXTURE_BUDGET_BYTES


def test_speech_fixture_is_a_few_seconds_of_band_limited_48k_stereo_speech() -> None:
    samples, rate = read_wav(FIXTURES / "speech_48k_stereo.wav")
    assert rate == 48_000 and samples.shape[1] == 2
    assert 2.0 <= len(samples) / rate <= 5.0
    assert np.array_equal(samples[:, 0], samples[:, 1])
    spectrum = np.abs(np.fft.rfft(samples[:, 0].astype(np.float64))) ** 2
    frequencies_hz = np.fft.rfftfreq(len(samples), 1 / rate)
    speech_band = spectrum[(frequencies_hz > 100) & (frequencies_hz < 4000)].sum()
    above_espeak_nyquist = spectrum[frequencies_hz > 11_500].sum()
    assert 10 * np.log10(speech_band / above_espeak_nyquist) > 60  # espeak-ng renders at 22,050 Hz
    assert np.sqrt(np.mean(samples**2)) > 0.01  # actual speech, not near-silence
