"""The half-band filter: its structure and the response the resamplers rely on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import freqz

from bot.audio.halfband import HALF_LENGTH, frequency_response_db, odd_taps, symmetric_branch


def full_filter() -> np.ndarray:
    taps = np.zeros(2 * HALF_LENGTH + 1)
    taps[HALF_LENGTH] = 0.5
    for j, g in enumerate(odd_taps()):
        taps[HALF_LENGTH + 2 * j + 1] = taps[HALF_LENGTH - 2 * j - 1] = g
    return taps


def test_unity_dc_gain_and_symmetric_branch() -> None:
    assert full_filter().sum() == pytest.approx(1.0, abs=1e-12)
    branch = symmetric_branch()
    assert branch.dtype == np.float32 and len(branch) == HALF_LENGTH + 1
    assert np.array_equal(branch, branch[::-1])


def test_response_matches_scipy_freqz_of_the_full_filter() -> None:
    frequencies_hz = np.array([100.0, 3_000.0, 9_000.0, 12_000.0, 15_000.0])
    _, response = freqz(full_filter(), worN=frequencies_hz, fs=48_000)
    assert frequency_response_db(frequencies_hz, 48_000) == pytest.approx(20 * np.log10(np.abs(response)), abs=1e-6)


def test_flat_passband_and_deep_stopband_at_48k() -> None:
    passband = frequency_response_db(np.linspace(0, 9_000, 200), 48_000)
    stopband = frequency_response_db(np.linspace(14_000, 24_000, 200), 48_000)
    assert np.max(np.abs(passband)) < 0.01
    assert np.max(stopband) < -80
    assert frequency_response_db([12_000], 48_000)[0] == pytest.approx(-6.02, abs=0.01)  # half-band: 1/2 at fs/4


def test_the_half_length_must_be_odd_and_positive() -> None:
    for bad in (0, 40, -3):
        with pytest.raises(ValueError, match="positive odd"):
            odd_taps(bad)
