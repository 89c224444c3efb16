"""The two PCM formats the bot moves between, and the arithmetic that converts sizes and durations.

Discord delivers and expects 48 kHz, 2-channel, signed 16-bit little-endian PCM in 20 ms frames.
The Realtime API takes and returns 24 kHz, 1-channel, signed 16-bit little-endian PCM in chunks of any size.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_WIDTH_BYTES = 2
FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class PcmFormat:
    """An interleaved signed 16-bit little-endian PCM format."""

    sample_rate: int
    channels: int

    @property
    def bytes_per_sample_frame(self) -> int:
        """Bytes per sampling instant (one sample for every channel)."""
        return SAMPLE_WIDTH_BYTES * self.channels

    def bytes_for_ms(self, duration_ms: float) -> int:
        """Bytes holding ``duration_ms`` of audio, rounded down to whole sample frames."""
        return int(self.sample_rate * duration_ms / 1000) * self.bytes_per_sample_frame

    def ms_for_bytes(self, size_bytes: int) -> float:
        """Duration in milliseconds of ``size_bytes`` of audio (partial sample frames ignored)."""
        return (size_bytes // self.bytes_per_sample_frame) * 1000 / self.sample_rate


DISCORD = PcmFormat(sample_rate=48_000, channels=2)
REALTIME = PcmFormat(sample_rate=24_000, channels=1)

DISCORD_FRAME_SAMPLES = DISCORD.sample_rate * FRAME_MS // 1000  # per channel: 960
DISCORD_FRAME_BYTES = DISCORD.bytes_for_ms(FRAME_MS)  # 3,840
REALTIME_FRAME_BYTES = REALTIME.bytes_for_ms(FRAME_MS)  # 960
DISCORD_SILENCE_FRAME = bytes(DISCORD_FRAME_BYTES)
REALTIME_SILENCE_FRAME = bytes(REALTIME_FRAME_BYTES)
