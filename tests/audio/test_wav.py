from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from bot.audio.wav import WavError, read_wav, write_wav


def test_round_trip_pcm16(tmp_path: Path) -> None:
    data = np.array([[0, 1], [-32768, 32767], [1000, -1000]], dtype="<i2")
    write_wav(tmp_path / "a.wav", data.tobytes() + b"\x01", 22_050, 2)  # a partial frame is dropped
    samples, rate = read_wav(tmp_path / "a.wav")
    assert rate == 22_050 and samples.shape == (3, 2)
    assert np.array_equal(np.rint(samples * 32768).astype(np.int32), data.astype(np.int32))


@pytest.mark.parametrize("width", [1, 3, 4])
def test_other_integer_widths(tmp_path: Path, width: int) -> None:
    path = tmp_path / f"w{width}.wav"
    half = {1: bytes([192]), 3: (1 << 22).to_bytes(3, "little"), 4: (1 << 30).to_bytes(4, "little")}[width]
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(width)
        writer.setframerate(8000)
        writer.writeframes(half * 4)
    samples, rate = read_wav(path)
    assert rate == 8000 and samples.shape == (4, 1)
    assert samples[:, 0] == pytest.approx([0.5] * 4)


def test_missing_and_non_wav_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="no such file"):
        read_wav(tmp_path / "missing.wav")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    with pytest.raises(WavError, match="not a PCM WAV file"):
        read_wav(text)
