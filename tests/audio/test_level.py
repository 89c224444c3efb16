from __future__ import annotations

import pytest

from bot.audio.level import SILENCE_DBFS, rms_dbfs
from tests.audio.conftest import pcm16, tone


def test_full_scale_sine_is_minus_3_dbfs() -> None:
    assert rms_dbfs(pcm16(tone(1000.0, 0.1, 48_000, amplitude=32767.0), 2)) == pytest.approx(-3.01, abs=0.02)


def test_half_amplitude_is_6_db_lower() -> None:
    full = rms_dbfs(pcm16(tone(1000.0, 0.1, 48_000, amplitude=16000.0)))
    half = rms_dbfs(pcm16(tone(1000.0, 0.1, 48_000, amplitude=8000.0)))
    assert full - half == pytest.approx(6.02, abs=0.01)


def test_silence_and_empty_input_hit_the_floor() -> None:
    assert rms_dbfs(bytes(3840)) == SILENCE_DBFS
    assert rms_dbfs(b"") == SILENCE_DBFS
    assert rms_dbfs(b"\x01\x00") > SILENCE_DBFS
