"""Small recording implementations of the session's protocols (voice link, playback, conversation) and a clock,
shared by the tests of the session and its parts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.persona import Persona
from bot.store import GuildSettings


@dataclass
class Voice:
    channel_id: int = 10
    handler: Callable[[bytes], None] | None = None
    spoken: dict[int, list[float]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=lambda: {5: "alice", 7: "carol"})
    humans: int = 2
    disconnected: bool = False
    tail_ms: float = 0.0
    user_handler: Callable[[int, bytes, float], None] | None = None
    gate: Callable[[int], bool] | None = None

    def set_silence_tail_ms(self, tail_ms: float) -> None:
        self.tail_ms = tail_ms

    def set_user_audio_handler(self, handler: Callable[[int, bytes, float], None] | None) -> None:
        self.user_handler = handler

    def set_audio_gate(self, gate: Callable[[int], bool] | None) -> None:
        self.gate = gate

    def human_names(self) -> list[str]:
        return sorted(self.names.values())[: self.humans]

    def set_room_audio_handler(self, handler: Callable[[bytes], None] | None) -> None:
        self.handler = handler

    def speakers_between(self, start_s: float, end_s: float) -> set[int]:
        return {uid for uid, times in self.spoken.items() if any(start_s <= t <= end_s for t in times)}

    def member_names(self) -> Mapping[int, str]:
        return self.names

    def humans_present(self) -> int:
        return self.humans

    async def move_to(self, channel: object) -> None:
        self.channel_id = 11

    async def disconnect(self) -> None:
        self.disconnected = True


@dataclass
class Player:
    queued: dict[str, int] = field(default_factory=dict)
    played_ms: dict[str, float] = field(default_factory=dict)
    lead_ins: int = 0

    def start_lead_in(self) -> None:
        self.lead_ins += 1

    def feed(self, item_id: str, pcm16_24k_mono: bytes) -> None:
        self.queued[item_id] = self.queued.get(item_id, 0) + len(pcm16_24k_mono)

    def clear(self) -> dict[str, float]:
        self.queued.clear()
        return dict(self.played_ms)

    @property
    def is_playing(self) -> bool:
        return bool(self.queued)

    started_handler: Callable[[str, float], None] | None = None

    def set_audio_started_handler(self, handler: Callable[[str, float], None] | None) -> None:
        self.started_handler = handler


@dataclass
class Talk:
    audio: list[bytes] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    interrupts: list[Mapping[str, float]] = field(default_factory=list)
    resets: int = 0
    settings: list[GuildSettings] = field(default_factory=list)
    closed: bool = False
    labels: list[tuple[str, str | None, str]] = field(default_factory=list)
    responses: int = 0
    rosters: list[tuple[str, ...]] = field(default_factory=list)

    async def label_turn(self, item_id: str, previous_item_id: str | None, label: str) -> None:
        self.labels.append((item_id, previous_item_id, label))

    async def respond(self) -> None:
        self.responses += 1

    async def set_roster(self, names: Sequence[str]) -> None:
        self.rosters.append(tuple(names))

    def push_audio(self, pcm16_24k_mono: bytes) -> None:
        self.audio.append(pcm16_24k_mono)

    async def send_text(self, text: str) -> None:
        self.texts.append(text)

    async def interrupt(self, played_ms: Mapping[str, float]) -> None:
        self.interrupts.append(played_ms)

    async def reset(self) -> None:
        self.resets += 1

    async def apply_settings(self, settings: GuildSettings, persona: Persona) -> None:
        self.settings.append(settings)

    async def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s
