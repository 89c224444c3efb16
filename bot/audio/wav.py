"""Reading and writing WAV files with the standard library (integer PCM: 8, 16, 24 or 32 bits)."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

_MAX_CHANNELS = 64
#: Sample rates an audio file can plausibly have; a header outside them is corrupt (1 Hz would make a converter
#: produce 48,000 samples per input sample).
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 1_536_000


class WavError(Exception):
    """The file is missing, is not a WAV file, or holds a format this reader does not support."""


def _decode(frames: bytes, width: int) -> npt.NDArray[np.float32]:
    if width == 1:
        return (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    if width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float32) / float(1 << 23)
    if width == 4:
        return (np.frombuffer(frames, dtype="<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)
    raise WavError(f"unsupported sample width: {8 * width} bits")


def read_wav(path: str | os.PathLike[str]) -> tuple[npt.NDArray[np.float32], int]:
    """The samples of a WAV file as float32 of shape ``(frames, channels)`` in [-1, 1], and its sample rate.

    Raises:
        WavError: the file is missing or unreadable, is not a WAV file, is not 8/16/24/32-bit integer PCM, or its
            header claims more than 64 channels or a sample rate outside 1 kHz to 1.536 MHz.
    """
    path = Path(path)
    if not path.is_file():
        raise WavError(f"{path}: no such file")
    try:
        with wave.open(str(path), "rb") as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            frames = reader.readframes(reader.getnframes())
    except EOFError as error:
        raise WavError(f"{path}: not a WAV file (empty or truncated header)") from error
    except wave.Error as error:
        raise WavError(f"{path}: not an integer PCM WAV file ({error or 'bad header'})") from error
    except OSError as error:
        raise WavError(f"{path}: cannot be read ({error.strerror or error})") from error
    if not 1 <= channels <= _MAX_CHANNELS:
        raise WavError(f"{path}: unsupported channel count {channels} (1 to {_MAX_CHANNELS})")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise WavError(f"{path}: unsupported sample rate {rate} Hz ({MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE})")
    samples = _decode(frames[: len(frames) - len(frames) % (width * channels)], width)
    return samples.reshape(-1, channels), rate


def write_wav(path: str | os.PathLike[str], pcm16: bytes, sample_rate: int, channels: int) -> None:
    """Write pcm16 LE audio as a WAV file (a partial last frame is dropped).

    Raises:
        ValueError: ``sample_rate`` or ``channels`` is not positive (checked before the file is created).
        OSError: the file cannot be written.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive (got {sample_rate})")
    if not 1 <= channels <= _MAX_CHANNELS:
        raise ValueError(f"channels must be between 1 and {_MAX_CHANNELS} (got {channels})")
    frame_bytes = 2 * channels
    # open the file first: if wave.open itself fails to open it, its writer's __del__ raises a second, unrelated error
    with open(path, "wb") as handle, wave.open(handle, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm16[: len(pcm16) - len(pcm16) % frame_bytes])
