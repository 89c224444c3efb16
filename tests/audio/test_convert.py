from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import soxr
from scipy.signal import resample_poly

from bot.audio.convert import resample_float32, to_discord_pcm16
from tests.audio.conftest import as_array, snr_db


def signal(rate: int, channels: int, seconds: float = 1.0) -> npt.NDArray[np.float64]:
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(3)
    columns = [0.3 * np.sin(2 * np.pi * 440 * t + c) + 0.05 * rng.standard_normal(len(t)) for c in range(channels)]
    data = np.column_stack(columns)
    # keep it below the lower Nyquist so both resamplers agree on what must pass
    smooth = soxr.resample(soxr.resample(data, rate, 6000, quality="VHQ"), 6000, rate, quality="VHQ")
    return np.asarray(smooth, dtype=np.float64)[: len(t)]


@pytest.mark.parametrize(
    ("from_rate", "to_rate", "channels"), [(16_000, 48_000, 1), (44_100, 48_000, 2), (48_000, 16_000, 1)]
)
def test_matches_soxr_and_scipy(from_rate: int, to_rate: int, channels: int) -> None:
    data = signal(from_rate, channels)
    ours = resample_float32(data, from_rate, to_rate)
    reference = soxr.resample(data, from_rate, to_rate, quality="VHQ")
    assert ours.shape == reference.shape
    edge = to_rate // 50
    assert snr_db(reference[edge:-edge], ours[edge:-edge]) >= 40
    g = np.gcd(from_rate, to_rate)
    poly = resample_poly(data, to_rate // g, from_rate // g, axis=0)
    assert snr_db(poly[edge:-edge], ours[edge:-edge]) >= 40


def test_same_rate_is_a_copy_and_one_dimensional_input_stays_one_dimensional() -> None:
    data = np.linspace(-1, 1, 100)
    assert np.array_equal(resample_float32(data, 8000, 8000), data.astype(np.float32))
    assert resample_float32(data, 8000, 16000).shape == (200,)
    with pytest.raises(ValueError):
        resample_float32(data, 0, 16000)


def test_to_discord_pcm16_makes_48k_stereo_from_anything() -> None:
    mono_16k = signal(16_000, 1)
    out = as_array(to_discord_pcm16(mono_16k, 16_000), channels=2)
    assert out.shape == (48_000, 2)
    assert np.array_equal(out[:, 0], out[:, 1])
    surround = np.column_stack([mono_16k[:, 0]] * 6)
    downmixed = as_array(to_discord_pcm16(surround, 16_000), channels=2)
    assert np.max(np.abs(downmixed - out)) <= 1  # the average of six equal channels, to within rounding
    stereo = to_discord_pcm16(signal(48_000, 2), 48_000)
    assert len(stereo) == 48_000 * 4
