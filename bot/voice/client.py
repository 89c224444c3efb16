"""A ``discord.VoiceClient`` that also receives: per-user PCM, one mixed room stream, a speaker timeline.

Built only on discord.py 2.7's own extension points:

- :meth:`create_connection_state` passes a ``hook`` that sees every voice-gateway message: SESSION_DESCRIPTION
  (op 4: mode and key), SPEAKING (op 5: SSRC -> user), CLIENTS_CONNECT / CLIENT_CONNECT (op 11/12: who is in the
  call) and CLIENT_DISCONNECT (op 13). DAVE state is read from the connection (``dave_session``,
  ``dave_protocol_version``), which discord.py keeps current from the DAVE opcodes.
- ``add_socket_listener`` delivers raw UDP datagrams on discord.py's socket reader thread to a
  :class:`~bot.voice.receiver.VoiceReceiver`; decoded frames reach the event loop through
  ``loop.call_soon_threadsafe``.

Speakers are decoded at 24 kHz mono (the Realtime API's format) and each frame's level is measured once, on the
socket thread. On the event loop, frames go to a :class:`~bot.voice.room.RoomMixer`; a slot it completes (with one
steady speaker: every frame, as it arrives) is handed to the room-audio handler in the same call, so a frame does not
wait for a clock. The loop's one :class:`~bot.voice.room_clock.RoomClock` (shared by every connection) keeps each
active room's deadline and checks the room only when it passes: a slot a late speaker held up, the silence tail in
real time, the end of the room. Use with ``await channel.connect(cls=ReceivingVoiceClient)``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import discord
from discord.voice_state import VoiceConnectionState

from bot.audio.formats import FRAME_MS, REALTIME
from bot.voice.connection_state import ReceivingConnectionState
from bot.voice.dave import DaveDecryptStep, connection_dave_state
from bot.voice.metrics import VoiceMetrics
from bot.voice.opus_decoder import speaker_decoder_24k_mono
from bot.voice.playback import PlaybackSource
from bot.voice.receiver import DecodedFrame, VoiceReceiver
from bot.voice.room import RoomMixer
from bot.voice.room_clock import RoomClock, shared_room_clock
from bot.voice.sender import VoiceSender
from bot.voice.transport_crypto import MODE

_log = logging.getLogger(__name__)

OP_SESSION_DESCRIPTION = 4
OP_SPEAKING = 5
OP_CLIENTS_CONNECT = 11
OP_CLIENT_CONNECT = 12
OP_CLIENT_DISCONNECT = 13

#: ``handler(pcm16_24k_mono)``: one mixed 20 ms frame of the room.
RoomAudioHandler = Callable[[bytes], None]
#: ``handler(user_id, pcm16_24k_mono, level_dbfs)``: one decoded frame of one speaker and its RMS level.
UserAudioHandler = Callable[[int, bytes, float], None]


class ReceivingVoiceClient(discord.VoiceClient):
    """discord.py's voice client plus a receive path. Everything public runs on the event loop.

    Attributes:
        metrics: counters for every packet outcome (see :class:`~bot.voice.metrics.VoiceMetrics`).
        room: the mixer and its :class:`~bot.voice.room.SpeakerTimeline` (``room.timeline``).
        call_user_ids: users the voice gateway reported in the call (op 11/12, minus op 13).
    """

    #: Seconds one 20 ms slot of the room lasts: the mixer's frame period (its deadlines, priming waits and silence
    #: tail). Real time; only the soak benchmark (``bench/soak.py``) shortens it, with its speakers sending as much
    #: faster, to run hours of audio in minutes. Read when a client is made.
    room_tick_s: float = FRAME_MS / 1000

    def __init__(self, client: discord.Client, channel: discord.abc.Connectable) -> None:
        self.metrics = VoiceMetrics()
        self.room = RoomMixer(time.monotonic, pcm_format=REALTIME, frame_period_s=ReceivingVoiceClient.room_tick_s)
        self.call_user_ids: set[int] = set()
        self._room_handler: RoomAudioHandler | None = None
        self._user_handler: UserAudioHandler | None = None
        self._gate: Callable[[int], bool] | None = None
        self._room_clock: RoomClock | None = None
        self._listening = False
        self._sender: VoiceSender | None = None
        self._on_playback_failed: Callable[[], None] | None = None
        super().__init__(client, channel)
        self._receiver = VoiceReceiver(
            None,
            on_frame=self._frame_from_socket_thread,
            on_silence=self._silence_from_socket_thread,
            dave=DaveDecryptStep(connection_dave_state(self._connection), self.metrics),
            metrics=self.metrics,
            decoder_factory=speaker_decoder_24k_mono,
        )

    # -- discord.py extension points ---------------------------------------------------------------------------------

    def create_connection_state(self) -> VoiceConnectionState:
        return ReceivingConnectionState(self, hook=self._on_voice_ws_message)

    async def _on_voice_ws_message(self, _ws: Any, msg: dict[str, Any]) -> None:
        """Sees every voice-gateway JSON message after discord.py handled it. Never raises."""
        try:
            self._handle_voice_ws_message(msg)
        except Exception:
            _log.exception("voice gateway message op %s could not be handled", msg.get("op"))

    def _handle_voice_ws_message(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        data = msg.get("d") or {}
        if op == OP_SESSION_DESCRIPTION:
            if data.get("mode") != MODE:
                _log.warning("voice mode %s is not %s: incoming audio cannot be decrypted", data.get("mode"), MODE)
                self.metrics.add("unsupported_mode")
                return
            self._receiver.set_secret_key(data["secret_key"])
            if not self._listening:
                self._connection.add_socket_listener(self._receiver.receive_datagram)
                self._listening = True
            _log.info("voice receive ready (dave_protocol_version=%s)", data.get("dave_protocol_version", 0))
        elif op == OP_SPEAKING:
            if "ssrc" in data and "user_id" in data:
                user_id = int(data["user_id"])
                self._receiver.map_ssrc(int(data["ssrc"]), user_id)
                self.call_user_ids.add(user_id)
        elif op == OP_CLIENTS_CONNECT:
            self.call_user_ids.update(int(u) for u in data.get("user_ids", ()))
        elif op == OP_CLIENT_CONNECT:
            if "user_id" in data:
                user_id = int(data["user_id"])
                self.call_user_ids.add(user_id)
                if data.get("audio_ssrc"):
                    self._receiver.map_ssrc(int(data["audio_ssrc"]), user_id)
        elif op == OP_CLIENT_DISCONNECT and "user_id" in data:
            user_id = int(data["user_id"])
            self.call_user_ids.discard(user_id)
            self._receiver.forget_user(user_id)
            self.room.forget(user_id)

    # -- socket thread -> event loop ----------------------------------------------------------------------------------

    def _frame_from_socket_thread(self, frame: DecodedFrame) -> None:
        """Socket thread: hand the frame to the event loop, nothing else."""
        if frame.user_id is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed while the socket thread was still reading
                self.loop.call_soon_threadsafe(self._deliver_frame, frame.user_id, frame.pcm16, frame.level_dbfs)

    def _silence_from_socket_thread(self, _ssrc: int, user_id: int | None) -> None:
        """Socket thread: a speaker's talk spurt ended."""
        if user_id is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._end_of_speech, user_id)

    def _end_of_speech(self, user_id: int) -> None:
        """A speaker's talk spurt ended: what they still had queued can go now."""
        self.room.end_of_speech(user_id)
        self._hand_over_ready()
        self._keep_deadline()

    def _deliver_frame(self, user_id: int, pcm16: bytes, level_dbfs: float) -> None:
        """A decoded frame on the event loop: to the per-user handler, then (if the gate lets it) to the room, and
        a slot it completes straight to the room handler; the clock keeps the room's next deadline."""
        if self._user_handler is not None:
            try:
                self._user_handler(user_id, pcm16, level_dbfs)
            except Exception:
                _log.exception("user audio handler failed")
        if self._gate is not None and not self._passes_gate(user_id):
            return
        self.room.push(user_id, pcm16, level_dbfs)
        self._hand_over_ready()
        self._keep_deadline()

    def _keep_deadline(self) -> None:
        """Move the room's timer on the shared clock to the mixer's next deadline (every slot moves it)."""
        clock = self._room_clock
        if clock is None:
            clock = self._room_clock = shared_room_clock(self.loop)
        clock.schedule(self, self._tick_room, self.room.next_due_s)

    def _passes_gate(self, user_id: int) -> bool:
        assert self._gate is not None
        try:
            return self._gate(user_id)
        except Exception:
            _log.exception("audio gate failed; the frame is not sent")
            return False

    def _hand_over_ready(self) -> None:
        """Every slot the mixer has complete, to the room handler now."""
        try:
            while (mixed := self.room.take_ready()) is not None:
                self._hand_over(mixed)
        except Exception:
            _log.exception("room mixer failed; what it holds waits for the room clock")

    def _hand_over(self, mixed: bytes) -> None:
        if self._room_handler is not None:
            try:
                self._room_handler(mixed)
            except Exception:
                _log.exception("room audio handler failed")

    def _tick_room(self) -> float | None:
        """This room at its deadline, on the shared clock: its next deadline, or ``None`` when it went idle."""
        try:
            mixed = self.room.tick()
        except Exception:
            _log.exception("room mixer failed; the room goes idle")
            return None
        if mixed is not None:
            self._hand_over(mixed)
            self._hand_over_ready()  # a slot sent without a late speaker may leave the next one complete
        if not self.room.active:
            self._receiver.flush()
            return None
        return self.room.next_due_s

    # -- the API for the layer above ---------------------------------------------------------------------------------

    @property
    def receiver(self) -> VoiceReceiver:
        """The receive pipeline (its metrics are :attr:`metrics`; ``receiver.streams_held`` counts its decoders)."""
        return self._receiver

    @property
    def channel_id(self) -> int:
        return self.channel.id

    def set_room_audio_handler(self, handler: RoomAudioHandler | None) -> None:
        """Call ``handler`` on the event loop with each mixed 20 ms 24 kHz mono frame while the room is active: as
        soon as each is complete (usually inside the delivery of a speaker's frame), or at its deadline."""
        self._room_handler = handler

    def set_user_audio_handler(self, handler: UserAudioHandler | None) -> None:
        """Call ``handler(user_id, pcm16_24k_mono, level_dbfs)`` on the event loop with each decoded frame of each
        speaker and its level (measured once, on the socket thread)."""
        self._user_handler = handler

    def set_audio_gate(self, gate: Callable[[int], bool] | None) -> None:
        """Only users for whom ``gate(user_id)`` is true reach the room stream (push-to-talk, privacy opt-outs).
        The per-user handler still sees everyone (levels for the echo guard; nothing is sent from there)."""
        self._gate = gate

    def set_silence_tail_ms(self, tail_ms: float) -> None:
        """How long the room stream goes on in silence after the last speaker (server VAD must hear the pause)."""
        self.room.set_tail_ms(tail_ms)

    def speakers_between(self, start_s: float, end_s: float) -> set[int]:
        """User ids voiced between two ``time.monotonic()`` instants."""
        return self.room.timeline.speakers_between(start_s, end_s)

    def member_names(self) -> Mapping[int, str]:
        """Display names of the members in the bot's voice channel."""
        members = getattr(self.channel, "members", [])
        return {member.id: member.display_name for member in members}

    def human_names(self) -> list[str]:
        """Display names of the humans in the bot's voice channel, sorted (the roster the model is told)."""
        return sorted(m.display_name for m in getattr(self.channel, "members", []) if not m.bot)

    def humans_present(self) -> int:
        """Members in the bot's voice channel who are not bots."""
        return sum(1 for member in getattr(self.channel, "members", []) if not member.bot)

    def play_source(
        self,
        source: PlaybackSource,
        *,
        sender: VoiceSender | None = None,
        on_failed: Callable[[], None] | None = None,
    ) -> None:
        """Play ``source`` (a live source: it plays until closed or stopped) on the shared ``sender``, or on a
        discord.py player thread of its own when there is none (``sender`` needs an Opus source).

        ``on_failed`` is called on the event loop if playback stops for good on an error (the sender gave up on this
        connection, or discord.py's player raised).
        """
        self.stop()
        self._on_playback_failed = on_failed
        if sender is None:
            self.play(source, after=self._player_ended)
            return
        sender.add(self, source, on_dropped=self._playback_failed_off_loop)
        self._sender = sender

    def stop(self) -> None:
        """Stop playing, on the shared sender or discord.py's player."""
        self._leave_sender()
        super().stop()

    def _leave_sender(self) -> None:
        if self._sender is not None:
            self._sender.remove(self)
            self._sender = None

    def set_speaking_threadsafe(self, speaking: bool) -> None:
        """Send SPEAKING (on or off) from any thread, as discord.py's player does."""
        state = discord.SpeakingState.voice if speaking else discord.SpeakingState.none
        future = asyncio.run_coroutine_threadsafe(self.ws.speak(state), self.loop)
        future.add_done_callback(_log_speaking_failure)

    def metrics_snapshot(self) -> dict[str, int]:
        return self.metrics.snapshot()

    def _player_ended(self, error: Exception | None) -> None:
        """discord.py's player thread ended (``after``)."""
        if error is not None:
            _log.error("voice player stopped with an error: %s", error)
            self._playback_failed_off_loop()

    def _playback_failed_off_loop(self) -> None:
        """A sending thread gave up: tell the owner, on the event loop."""
        handler = self._on_playback_failed
        if handler is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to tell
                self.loop.call_soon_threadsafe(handler)

    def cleanup(self) -> None:
        if self._listening:
            self._connection.remove_socket_listener(self._receiver.receive_datagram)
            self._listening = False
        if self._room_clock is not None:
            self._room_clock.stop(self)
        self._leave_sender()
        super().cleanup()


def _log_speaking_failure(future: concurrent.futures.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        _log.debug("speaking state not sent: %s", future.exception())
