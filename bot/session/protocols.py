"""The seams of a guild session: what it needs of the Discord voice connection, of playback and of the Realtime
conversation. Each is a small protocol, so the session's parts are tested with plain recording objects and the real
links (:mod:`bot.voice`, :mod:`bot.realtime.connection`) are joined only in the end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import discord

from bot.persona import Persona
from bot.store import GuildSettings


class VoiceLink(Protocol):
    """The Discord side of a session."""

    @property
    def channel_id(self) -> int: ...
    def set_room_audio_handler(self, handler: Callable[[bytes], None] | None) -> None:
        """Call ``handler(pcm16_24k_mono)`` on the event loop with each mixed 20 ms frame of the room."""

    def set_user_audio_handler(self, handler: Callable[[int, bytes, float], None] | None) -> None:
        """Call ``handler(user_id, pcm16_24k_mono, level_dbfs)`` on the event loop with each decoded frame of each
        speaker and its RMS level (measured once by the voice link)."""

    def set_audio_gate(self, gate: Callable[[int], bool] | None) -> None:
        """Only users for whom ``gate(user_id)`` holds reach the room stream."""

    def set_silence_tail_ms(self, tail_ms: float) -> None:
        """How long the room stream continues in silence after the last speaker."""

    def speakers_between(self, start_s: float, end_s: float) -> set[int]:
        """User ids voiced between two ``time.monotonic()`` instants."""

    def member_names(self) -> Mapping[int, str]: ...
    def humans_present(self) -> int: ...
    def human_names(self) -> list[str]:
        """Display names of the humans in the channel, sorted."""

    async def move_to(self, channel: discord.VoiceChannel) -> None: ...
    async def disconnect(self) -> None: ...


class Playback(Protocol):
    """The audio source the Discord player reads (thread-safe on its own)."""

    def feed(self, item_id: str, pcm16_24k_mono: bytes) -> None: ...
    def start_lead_in(self) -> None:
        """An answer was asked for: start the anti-clipping lead silence now, while the model thinks."""

    def clear(self) -> dict[str, float]:
        """Drop everything not yet played; returns ``{item_id: ms actually played}``."""

    @property
    def is_playing(self) -> bool: ...
    def set_audio_started_handler(self, handler: Callable[[str, float], None] | None) -> None:
        """Call ``handler(item_id, monotonic_s)`` on the sending thread when an answer's first frame goes out."""


class Conversation(Protocol):
    """The Realtime side of a session."""

    def push_audio(self, pcm16_24k_mono: bytes) -> None:
        """Queue 24 kHz mono audio for the model without waiting (called for every 20 ms frame)."""

    async def send_text(self, text: str) -> None: ...
    async def interrupt(self, played_ms: Mapping[str, float]) -> None: ...
    async def label_turn(self, item_id: str, previous_item_id: str | None, label: str) -> None: ...
    async def respond(self) -> None: ...
    async def set_roster(self, names: Sequence[str]) -> None: ...
    async def reset(self) -> None: ...
    async def apply_settings(self, settings: GuildSettings, persona: Persona) -> None: ...
    async def close(self) -> None: ...
