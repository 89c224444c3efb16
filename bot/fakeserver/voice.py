"""The local server's voice: speech from espeak-ng when it is installed, else a clear tone."""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from bot import texts
from bot.audio.convert import resample_float32
from bot.audio.wav import WavError, decode_wav
from bot.fakeserver.peer import SAMPLE_RATE, tone_pcm16

_log = logging.getLogger(__name__)

ESPEAK = "espeak-ng"
#: espeak-ng renders a sentence in milliseconds; a stuck one is abandoned after this.
ESPEAK_TIMEOUT_S = 10.0
TONE_HZ = 440.0
TONE_MS = 800
_FADE_MS = 20


@dataclass(frozen=True, slots=True)
class Voice:
    """Renders text as 24 kHz mono pcm16; ``espeak`` is the path of espeak-ng, or None for the tone."""

    espeak: str | None

    @classmethod
    def find(cls) -> Voice:
        """espeak-ng when it is on ``PATH``, else the tone."""
        return cls(shutil.which(ESPEAK))

    def describe(self) -> str:
        """Which voice this is, in a sentence for the user."""
        return texts.voice_espeak(ESPEAK) if self.espeak else texts.voice_tone(TONE_HZ, ESPEAK)

    def render(self, text: str) -> bytes:
        """``text`` as 24 kHz mono pcm16. Blocks for the espeak-ng run: call it in a worker thread."""
        if self.espeak:
            try:
                return self._speak(self.espeak, text)
            except (OSError, subprocess.SubprocessError, WavError, ValueError) as error:
                _log.warning("%s failed (%s); answering with a tone", ESPEAK, error)
        return tone()

    @staticmethod
    def _speak(executable: str, text: str) -> bytes:
        result = subprocess.run(
            [executable, "-v", "en-us", "--stdout", text],
            capture_output=True,
            timeout=ESPEAK_TIMEOUT_S,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        samples, rate = decode_wav(result.stdout, ESPEAK)
        mono = resample_float32(samples.mean(axis=1), rate, SAMPLE_RATE)
        pcm16: bytes = np.clip(np.rint(mono * 32768.0), -32768, 32767).astype("<i2").tobytes()
        return pcm16


def tone(duration_ms: int = TONE_MS) -> bytes:
    """A steady tone with short fades (no clicks), 24 kHz mono pcm16."""
    samples = np.frombuffer(tone_pcm16(duration_ms, TONE_HZ), dtype="<i2").astype(np.float64)
    index = np.arange(len(samples))
    fade = np.minimum(1.0, np.minimum(index, index[::-1]) / (SAMPLE_RATE * _FADE_MS / 1000))
    return np.rint(samples * fade).astype("<i2").tobytes()
