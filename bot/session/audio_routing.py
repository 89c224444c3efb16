"""The session's audio paths: room frames to the Realtime conversation, each speaker's frames to the turn-taking
rules, and the model's answers to playback.

Room frames (24 kHz mono, 20 ms: the voice link decodes and mixes in the Realtime API's format) ->
``conversation.push_audio`` as they are, queued without a task per frame (no resampling); each speaker's frame
level (measured once, by the voice link) -> the turn-taking rules; answers (24 kHz mono) -> ``playback.feed``.
Which users reach the room stream is the gate's decision (the turn-taking rules own it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from bot.session.protocols import Conversation, Playback, VoiceLink
from bot.session.state import SessionState

#: Silence sent after the last speaker beyond the server VAD's silence duration, so it always hears the pause end.
VAD_TAIL_MARGIN_MS = 300

#: ``(user_id, level_dbfs, now_s)`` for each decoded frame of each speaker.
UserLevelHandler = Callable[[int, float, float], None]


class AudioRouting:
    """Moves one session's audio: room -> Realtime, speakers' levels -> turn-taking, answers -> playback."""

    def __init__(
        self,
        state: SessionState,
        voice: VoiceLink,
        playback: Playback,
        conversation: Conversation,
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self._state = state
        self._voice = voice
        self._playback = playback
        self._conversation = conversation
        self._spawn = spawn
        self._on_user_level: UserLevelHandler | None = None
        self._on_first_frame_played: Callable[[float], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(
        self,
        *,
        gate: Callable[[int], bool],
        on_user_level: UserLevelHandler,
        on_first_frame_played: Callable[[float], None],
    ) -> None:
        """Start routing (on the event loop): the links begin calling in."""
        self._loop = asyncio.get_running_loop()
        self._on_user_level = on_user_level
        self._on_first_frame_played = on_first_frame_played
        self.settings_changed()
        self._voice.set_audio_gate(gate)
        self._voice.set_user_audio_handler(self._on_user_frame)
        self._voice.set_room_audio_handler(self._on_room_frame)
        self._playback.set_audio_started_handler(self._audio_started_on_player_thread)

    def detach(self) -> None:
        """Stop routing: nothing more is pushed to the conversation or reported from playback."""
        self._voice.set_room_audio_handler(None)
        self._voice.set_user_audio_handler(None)
        self._playback.set_audio_started_handler(None)

    def settings_changed(self) -> None:
        """The room stream must keep sending silence longer than the VAD waits, or a turn would never end."""
        self._voice.set_silence_tail_ms(self._state.settings.silence_ms + VAD_TAIL_MARGIN_MS)

    def play(self, item_id: str, pcm16_24k_mono: bytes) -> None:
        self._playback.feed(item_id, pcm16_24k_mono)

    def _on_user_frame(self, user_id: int, _pcm16_24k_mono: bytes, level_dbfs: float) -> None:
        """Each decoded frame of each user, on the event loop: its level, for the guard, talk time and timings."""
        if self._state.closed or self._on_user_level is None:
            return
        self._on_user_level(user_id, level_dbfs, self._state.now())

    def _on_room_frame(self, pcm16_24k_mono: bytes) -> None:
        """A mixed 20 ms room frame, on the event loop: pushed as it is, without waiting."""
        if not self._state.closed:
            self._conversation.push_audio(pcm16_24k_mono)

    def _audio_started_on_player_thread(self, _item_id: str, at_s: float) -> None:
        """Sending thread: an answer's first frame went to Discord. Hop to the loop; nothing else here."""
        loop, handler = self._loop, self._on_first_frame_played
        if loop is not None and handler is not None and not loop.is_closed():
            loop.call_soon_threadsafe(handler, at_s)
