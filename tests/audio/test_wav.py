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
    with pytest.raises(WavError, match=r"notes\.wav: not an integer PCM WAV file"):
        read_wav(text)


def test_a_string_path_works_too(tmp_path: Path) -> None:
    path = str(tmp_path / "s.wav")
    write_wav(path, np.array([5, -5], dtype="<i2").tobytes(), 24_000, 1)
    samples, rate = read_wav(path)
    assert rate == 24_000 and samples[:, 0] * 32768 == pytest.approx([5, -5])


def test_float_wav_is_reported_as_unsupported(tmp_path: Path) -> None:
    from scipy.io import wavfile

    path = tmp_path / "float.wav"
    wavfile.write(path, 16_000, np.zeros(100, dtype=np.float32))
    with pytest.raises(WavError, match="not an integer PCM WAV file"):
        read_wav(path)


@pytest.mark.parametrize("content", [b"", b"RIFF\x24\x00\x00\x00WAVEfmt "], ids=["empty", "truncated-header"])
def test_empty_and_truncated_files_are_clear_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(WavError, match=r"broken\.wav: not a"):
        read_wav(path)


def test_a_directory_is_not_a_wav_file(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="no such file"):
        read_wav(tmp_path)


@pytest.mark.parametrize(("sample_rate", "channels", "message"), [(0, 2, "sample_rate"), (48_000, 0, "channels")])
def test_write_rejects_a_bad_format_before_creating_the_file(
    tmp_path: Path, sample_rate: int, channels: int, message: str
) -> None:
    path = tmp_path / "out.wav"
    with pytest.raises(ValueError, match=message):
        write_wav(path, bytes(8), sample_rate, channels)
    assert not path.exists()


def test_write_to_a_missing_directory_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_wav(tmp_path / "missing" / "out.wav", bytes(8), 48_000, 2)


@pytest.mark.parametrize(("rate", "channels", "message"), [(1, 1, "sample rate 1 Hz"), (8000, 65, "channel count 65")])
def test_an_implausible_header_is_a_clear_error(tmp_path: Path, rate: int, channels: int, message: str) -> None:
    path = tmp_path / "odd.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(bytes(2 * channels * 10))
    with pytest.raises(WavError, match=message):
        read_wav(path)
