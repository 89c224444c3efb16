from __future__ import annotations

import struct
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
    with pytest.raises(WavError, match=r"notes\.wav: not a WAV file \(no RIFF/WAVE header\)"):
        read_wav(text)


def test_a_string_path_works_too(tmp_path: Path) -> None:
    path = str(tmp_path / "s.wav")
    write_wav(path, np.array([5, -5], dtype="<i2").tobytes(), 24_000, 1)
    samples, rate = read_wav(path)
    assert rate == 24_000 and samples[:, 0] * 32768 == pytest.approx([5, -5])


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


def riff(*chunks: tuple[bytes, bytes], riff_id: bytes = b"RIFF") -> bytes:
    """A RIFF/WAVE file of ``(chunk id, body)`` pairs, each padded to an even length."""
    body = b"".join(cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1) for cid, data in chunks)
    return riff_id + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def fmt_chunk(encoding: int, channels: int, rate: int, container_bits: int, valid_bits: int | None = None) -> bytes:
    align = channels * container_bits // 8
    if valid_bits is None:
        return struct.pack("<HHIIHH", encoding, channels, rate, rate * align, align, container_bits)
    sub_format = struct.pack("<H", encoding) + bytes.fromhex("000000001000800000aa00389b71")  # the KSDATAFORMAT GUID
    return struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * align, align, container_bits, 22, valid_bits, 0) + (
        sub_format
    )


def header_only() -> bytes:
    return riff((b"fmt ", fmt_chunk(1, 1, 8000, 16)))


@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_float_wav_is_read_at_full_scale(tmp_path: Path, dtype: str) -> None:
    values = np.array([[0.5, -0.25], [1.0, -1.0], [0.0, 0.125]], dtype=dtype)
    path = tmp_path / "float.wav"
    path.write_bytes(
        riff((b"fmt ", fmt_chunk(3, 2, 44_100, 8 * np.dtype(dtype).itemsize)), (b"data", values.tobytes()))
    )
    samples, rate = read_wav(path)
    assert rate == 44_100 and samples.dtype == np.float32
    assert np.array_equal(samples, values.astype(np.float32))


def test_a_float_wav_written_by_scipy_is_read(tmp_path: Path) -> None:
    from scipy.io import wavfile

    path = tmp_path / "scipy.wav"
    wavfile.write(path, 16_000, np.full((100, 3), 0.5, dtype=np.float32))
    samples, rate = read_wav(path)
    assert rate == 16_000 and samples.shape == (100, 3) and np.all(samples == 0.5)


def test_non_finite_float_samples_become_silence_or_full_scale(tmp_path: Path) -> None:
    values = np.array([np.nan, np.inf, -np.inf, 0.5], dtype="<f4")
    path = tmp_path / "nan.wav"
    path.write_bytes(riff((b"fmt ", fmt_chunk(3, 1, 8000, 32)), (b"data", values.tobytes())))
    assert read_wav(path)[0][:, 0].tolist() == [0.0, 1.0, -1.0, 0.5]


def test_extensible_24_bit_in_32_bit_containers_with_six_channels(tmp_path: Path) -> None:
    quarter = (1 << 29).to_bytes(4, "little", signed=True)  # 0.25 of full scale, left-justified 24 bits
    minus_half = (-(1 << 30)).to_bytes(4, "little", signed=True)
    frame = quarter * 3 + minus_half * 3
    path = tmp_path / "surround.wav"
    path.write_bytes(riff((b"fmt ", fmt_chunk(1, 6, 48_000, 32, valid_bits=24)), (b"data", frame * 5)))
    samples, rate = read_wav(path)
    assert rate == 48_000 and samples.shape == (5, 6)
    assert samples[0].tolist() == [0.25, 0.25, 0.25, -0.5, -0.5, -0.5]


def test_other_chunks_are_skipped_and_order_does_not_matter(tmp_path: Path) -> None:
    data = np.array([100, -100, 7], dtype="<i2").tobytes()
    path = tmp_path / "chunks.wav"
    path.write_bytes(riff((b"LIST", b"INFOodd"), (b"data", data), (b"fmt ", fmt_chunk(1, 1, 22_050, 16))))
    samples, rate = read_wav(path)
    assert rate == 22_050 and (samples[:, 0] * 32768).tolist() == [100, -100, 7]


def test_a_data_chunk_longer_than_the_file_is_read_to_the_end(tmp_path: Path) -> None:
    content = riff((b"fmt ", fmt_chunk(1, 1, 8000, 16)), (b"data", np.arange(10, dtype="<i2").tobytes()))
    cut = content[:-5]  # cut mid-sample, its size still claims 20 bytes
    path = tmp_path / "cut.wav"
    path.write_bytes(cut)
    samples, _rate = read_wav(path)
    assert (samples[:, 0] * 32768).tolist() == list(range(7))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (riff((b"fmt ", b"\x01\x00\x01\x00")), r"damaged WAV file \(its format chunk is 4 bytes, at least 16"),
        (header_only() + b"LIST\xff\xff\xff\x7fINFO", r"the 'LIST' chunk at byte 36 claims"),
        (header_only() + bytes(range(8)), "no valid chunk header at byte 36"),
        (header_only() + b"dat", "ends inside a chunk header at byte 36"),
        (riff((b"fmt ", fmt_chunk(1, 1, 8000, 16))), r"without audio \(no data chunk\)"),
        (riff((b"data", bytes(8))), r"not a WAV file \(no format chunk\)"),
        (riff((b"fmt ", fmt_chunk(6, 1, 8000, 8)), (b"data", bytes(8))), "unsupported WAV encoding A-law"),
        (riff((b"fmt ", fmt_chunk(1, 1, 8000, 12)), (b"data", bytes(8))), "unsupported sample format: 12-bit integer"),
        (riff((b"fmt ", fmt_chunk(3, 1, 8000, 16)), (b"data", bytes(8))), "unsupported sample format: 16-bit float"),
        (riff((b"fmt ", fmt_chunk(1, 1, 8000, 16)), riff_id=b"RIFX"), "RIFX WAV files are not supported"),
        (riff((b"fmt ", struct.pack("<HHIIHHH", 0xFFFE, 1, 8000, 1, 2, 16, 22))), "extensible format chunk of 18"),
    ],
    ids=["short-fmt", "chunk-overrun", "garbage-chunk", "cut-header", "no-data", "no-fmt", "a-law", "12-bit",
         "16-bit-float", "big-endian", "short-extensible"],
)  # fmt: skip
def test_a_damaged_or_unsupported_file_is_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(WavError, match=message) as caught:
        read_wav(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)
