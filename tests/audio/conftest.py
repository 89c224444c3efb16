from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bot.audio.wav import read_wav

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="session")
def speech_48k_stereo() -> bytes:
    """The committed speech recording as 48 kHz stereo pcm16 bytes."""
    samples, rate = read_wav(FIXTURES / "speech_48k_stereo.wav")
    assert rate == 48_000 and samples.shape[1] == 2
    data: bytes = np.clip(np.rint(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return data


def tone(frequency_hz: float, seconds: float, sample_rate: int, amplitude: float = 8000.0) -> npt.NDArray[np.float64]:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return amplitude * np.sin(2 * np.pi * frequency_hz * t)


def pcm16(samples: npt.NDArray[np.float64], channels: int = 1) -> bytes:
    data = np.repeat(samples, channels) if channels > 1 else samples
    return np.clip(np.rint(data), -32768, 32767).astype("<i2").tobytes()


def as_array(data: bytes, channels: int = 1) -> npt.NDArray[np.float64]:
    array = np.frombuffer(data, dtype="<i2").astype(np.float64)
    return array.reshape(-1, channels) if channels > 1 else array


def snr_db(reference: npt.ArrayLike, signal: npt.ArrayLike) -> float:
    reference = np.asarray(reference, dtype=np.float64)
    error = np.asarray(signal, dtype=np.float64) - reference
    return float(10 * np.log10(np.sum(reference**2) / max(np.sum(error**2), 1e-20)))
