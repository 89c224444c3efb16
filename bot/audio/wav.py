"""Reading and writing WAV files: integer PCM (8, 16, 24 or 32 bits) and IEEE float (32 or 64 bits), any channels.

The reader walks the RIFF chunks itself (the standard library's ``wave`` reads integer PCM only): ``fmt `` and
``data`` in any order, other chunks skipped, ``WAVE_FORMAT_EXTENSIBLE`` headers (24-bit in 32-bit containers,
multichannel masks) understood. A damaged file is a :class:`WavError` with one sentence saying what is wrong, never
another exception. A ``data`` chunk that claims more bytes than the file holds (a recording that was cut off, or a
streamed WAV whose size was never filled in) is read up to the end of the file.
"""

from __future__ import annotations

import logging
import os
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

_log = logging.getLogger(__name__)

_MAX_CHANNELS = 64
#: Sample rates an audio file can plausibly have; a header outside them is corrupt (1 Hz would make a converter
#: produce 48,000 samples per input sample).
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 1_536_000

_PCM = 0x0001
_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE
_ENCODING_NAMES = {0x0002: "MS ADPCM", 0x0006: "A-law", 0x0007: "µ-law", 0x0011: "IMA ADPCM", 0x0055: "MP3"}
_MIN_FMT_BYTES = 16
_MIN_EXTENSIBLE_FMT_BYTES = 40
_CONVERT_HINT = "convert it, e.g. `ffmpeg -i IN -c:a pcm_s16le OUT.wav`"


class WavError(Exception):
    """The file is missing, is not a WAV file, is damaged, or holds an encoding this reader does not support."""


@dataclass(frozen=True, slots=True)
class _Format:
    encoding: int  # _PCM or _FLOAT (an extensible header's sub-format)
    channels: int
    sample_rate: int
    block_align: int  # bytes per frame, every channel
    bits: int


def _decode(data: bytes, encoding: int, width: int) -> npt.NDArray[np.float32]:
    """Samples of ``width``-byte containers as float32, full scale 1.0 (integers are left-justified in theirs)."""
    if encoding == _FLOAT:
        values = np.frombuffer(data, dtype="<f4" if width == 4 else "<f8").astype(np.float32)
        return np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0)
    if width == 1:
        return (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if width == 3:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float32) / float(1 << 23)
    return (np.frombuffer(data, dtype="<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)


def _parse_format(path: str, body: bytes) -> _Format:
    if len(body) < _MIN_FMT_BYTES:
        raise WavError(f"{path}: damaged WAV file (its format chunk is {len(body)} bytes, at least 16 expected)")
    encoding, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if encoding == _EXTENSIBLE:
        if len(body) < _MIN_EXTENSIBLE_FMT_BYTES:
            raise WavError(f"{path}: damaged WAV file (an extensible format chunk of {len(body)} bytes, 40 expected)")
        valid_bits, _mask, sub_format = struct.unpack_from("<HIH", body, 18)
        encoding, bits = sub_format, valid_bits or bits
    if encoding not in (_PCM, _FLOAT):
        name = _ENCODING_NAMES.get(encoding, f"format 0x{encoding:04x}")
        raise WavError(f"{path}: unsupported WAV encoding {name} (integer PCM or float is needed; {_CONVERT_HINT})")
    if not 1 <= channels <= _MAX_CHANNELS:
        raise WavError(f"{path}: unsupported channel count {channels} (1 to {_MAX_CHANNELS})")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise WavError(f"{path}: unsupported sample rate {rate} Hz ({MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE})")
    width = block_align // channels if block_align % channels == 0 else 0
    widths = (4, 8) if encoding == _FLOAT else (1, 2, 3, 4)
    if width not in widths or not 0 < bits <= 8 * width:
        kind = "float" if encoding == _FLOAT else "integer"
        raise WavError(
            f"{path}: unsupported sample format: {bits}-bit {kind} in {block_align}-byte frames of {channels} "
            f"channel(s) (integer 8/16/24/32-bit or float 32/64-bit is read; {_CONVERT_HINT})"
        )
    return _Format(encoding, channels, rate, block_align, bits)


def _chunks(path: str, content: bytes) -> tuple[_Format, bytes]:
    """The format and the audio bytes of a RIFF/WAVE file's ``content``."""
    if not content:
        raise WavError(f"{path}: not a WAV file (it is empty)")
    if content[:4] in (b"RIFX", b"RF64") and content[8:12] == b"WAVE":
        raise WavError(f"{path}: {content[:4].decode()} WAV files are not supported ({_CONVERT_HINT})")
    if len(content) < 12 or content[:4] != b"RIFF" or content[8:12] != b"WAVE":
        raise WavError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    fmt: _Format | None = None
    data: bytes | None = None
    offset = 12
    while offset < len(content) and (fmt is None or data is None):
        if len(content) - offset < 8:
            raise WavError(f"{path}: not a complete WAV file (it ends inside a chunk header at byte {offset})")
        chunk_id, size = content[offset : offset + 4], struct.unpack_from("<I", content, offset + 4)[0]
        if not all(32 <= byte < 127 for byte in chunk_id):
            raise WavError(f"{path}: damaged WAV file (no valid chunk header at byte {offset})")
        start = offset + 8
        end = start + size
        if chunk_id == b"data":
            if end > len(content):
                _log.debug("%s: the data chunk claims %d bytes; reading the %d there are", path, size, len(content))
                end = len(content)
            data = content[start:end]
        elif end > len(content):
            name = chunk_id.decode("ascii")
            raise WavError(
                f"{path}: damaged WAV file (the {name!r} chunk at byte {offset} claims {size} bytes, "
                f"only {len(content) - start} follow)"
            )
        elif chunk_id == b"fmt ":
            fmt = _parse_format(path, content[start:end])
        offset = end + (size & 1)  # chunks are padded to an even length
    if fmt is None:
        raise WavError(f"{path}: not a WAV file (no format chunk)")
    if data is None:
        raise WavError(f"{path}: a WAV file without audio (no data chunk)")
    return fmt, data


def read_wav(path: str | os.PathLike[str]) -> tuple[npt.NDArray[np.float32], int]:
    """The samples of a WAV file as float32 of shape ``(frames, channels)``, full scale 1.0, and its sample rate.

    Raises:
        WavError: the file is missing or unreadable, is not a WAV file or is damaged, holds an encoding other than
            8/16/24/32-bit integer PCM or 32/64-bit float, or its header claims more than 64 channels or a sample
            rate outside 1 kHz to 1.536 MHz.
    """
    path = Path(path)
    if not path.is_file():
        raise WavError(f"{path}: no such file")
    try:
        content = path.read_bytes()
    except OSError as error:
        raise WavError(f"{path}: cannot be read ({error.strerror or error})") from error
    return decode_wav(content, str(path))


def decode_wav(content: bytes, name: str = "WAV data") -> tuple[npt.NDArray[np.float32], int]:
    """:func:`read_wav` for a WAV file's bytes (e.g. a program's output); ``name`` starts each error message.

    Raises:
        WavError: as :func:`read_wav`.
    """
    fmt, data = _chunks(name, content)
    whole = data[: len(data) - len(data) % fmt.block_align]
    samples = _decode(whole, fmt.encoding, fmt.block_align // fmt.channels)
    return samples.reshape(-1, fmt.channels), fmt.sample_rate


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
