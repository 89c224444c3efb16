from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soxr
from scipy.signal import resample_poly

from bot.audio.convert import resample_float32, to_discord_pcm16
from bot.audio.wav import read_wav, write_wav
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
    ("from_rate", "to_rate", "channels"),
    [(16_000, 48_000, 1), (44_100, 48_000, 2), (48_000, 16_000, 1), (96_000, 48_000, 2), (22_050, 48_000, 1)],
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


@pytest.mark.parametrize(
    ("samples", "from_rate", "message"),
    [
        (np.zeros(10), 0, "from_rate must be a positive integer"),
        (np.zeros(10), 16_000.5, "from_rate must be a positive integer"),
        (np.zeros((4, 2, 2)), 16_000, r"shape \(n,\) or \(n, channels\)"),
        (np.zeros((4, 0)), 16_000, "1 to 64 channels"),
        (np.zeros(10), -5, "from_rate must be a positive integer"),
        (np.zeros(10), 48_000 * 2**19, "more than 131072x apart"),
    ],
)
def test_bad_input_is_a_clear_value_error(samples: npt.NDArray[np.float64], from_rate: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resample_float32(samples, from_rate, 48_000)
    with pytest.raises(ValueError, match=message):
        to_discord_pcm16(samples, from_rate)


def test_an_odd_but_legal_rate_still_resamples() -> None:
    data = np.sin(2 * np.pi * 440 * np.arange(44_101) / 44_101)  # ratio 48000/44101: a 48,000-phase filter bank
    out = resample_float32(data, 44_101, 48_000)
    assert out.shape == (48_000,)
    expected = np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000)
    assert snr_db(expected[1000:-1000], out[1000:-1000]) >= 40


def test_rates_with_huge_reduced_ratios_are_approximated_not_refused() -> None:
    # 767,999 is prime: the exact ratio 48000/767999 would need a ~300 MB filter bank
    rate = 767_999
    data = np.sin(2 * np.pi * 440 * np.arange(rate // 4) / rate)
    out = resample_float32(data, rate, 48_000)
    assert out.shape == (12_000,)
    expected = np.sin(2 * np.pi * 440 * np.arange(12_000) / 48_000)
    assert snr_db(expected[1000:-1000], out[1000:-1000]) >= 40
    # a corrupt header's prime rate: nothing to output from 10 samples, and no 768 GiB allocation
    assert resample_float32(np.zeros(10), 2**31 - 1, 48_000).shape == (0,)
    assert len(to_discord_pcm16(np.zeros((100_000, 1)), 2**31 - 1)) == 2 * 4


def test_ratios_beyond_the_limit_are_refused_both_ways() -> None:
    with pytest.raises(ValueError, match="more than 131072x apart"):
        resample_float32(np.zeros(10), 1, 2**20)
    with pytest.raises(ValueError, match="more than 131072x apart"):
        resample_float32(np.zeros(10), 2**20 * 3, 1)


def test_empty_input_gives_empty_output() -> None:
    assert resample_float32(np.zeros((0, 2)), 16_000, 48_000).shape == (0, 2)
    assert to_discord_pcm16(np.zeros((0, 1)), 16_000) == b""


def test_48k_stereo_pcm16_read_from_a_wav_comes_back_unchanged(tmp_path: Path) -> None:
    original = np.random.default_rng(5).integers(-32768, 32768, size=(4800, 2)).astype("<i2").tobytes()
    write_wav(tmp_path / "discord.wav", original, 48_000, 2)
    samples, rate = read_wav(tmp_path / "discord.wav")
    assert to_discord_pcm16(samples, rate) == original


def test_full_scale_saturates_instead_of_wrapping() -> None:
    square = np.where(np.arange(1600) % 80 < 40, 1.0, -1.0)  # resampling overshoots a full-scale square wave
    out = as_array(to_discord_pcm16(square, 16_000), channels=2)
    assert out.max() == 32767 and out.min() == -32768
    periods = out[:, 0].reshape(-1, 240)  # 80 samples at 16 kHz are 240 at 48 kHz
    assert (periods[:, 30:90] > 30_000).all() and (periods[:, 150:210] < -30_000).all()


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
