"""Load: N concurrent conversations against the local Realtime server on loopback, with bot-added latency.

Each level runs the bot side in a fresh process (so CPU time and peak memory are its own) and the server in another
(:mod:`bench.loopback_server`). Per conversation, as the bot does it:

- a :class:`~bot.realtime.driver.RealtimeSession` with the persona's settings and tools, and a
  :class:`~bot.voice.playback.PlaybackSource` as its audio sink;
- the receive path threaded like ``bot.voice.client`` (:class:`_ReceiveSide`): a voice socket thread hands a synthetic
  speaker's real libopus packets, encrypted like Discord's, to a :class:`~bot.voice.receiver.VoiceReceiver` every
  20 ms; decoded frames go to the event loop, where a drift-free room clock mixes them
  (:class:`~bot.voice.room.RoomMixer`), resamples each mix to 24 kHz mono and pushes it to the session;
- the playback side, one of ``PLAYERS``: a player thread per voice connection like discord.py's ``AudioPlayer``
  (paced every 20 ms; it reads the source, Opus-encodes and transport-encrypts every frame), or the bot's own
  :class:`~bot.voice.sender.VoiceSender` (one thread for every connection) with the bot's
  :class:`~bot.voice.playback.OpusPlaybackSource`. Both count underruns: silent frames after an answer's audio
  started and before it was all played.

The speaker talks for about 0.7 s every ``TURN_PERIOD_S`` (phases spread at random); the server answers each turn
with ``ANSWER_MS`` of audio in 100 ms deltas sent at twice real time.

Bot-added latency:

- inbound: a mixed 20 ms frame handed to the resampler and session -> its ``input_audio_buffer.append`` written to
  the WebSocket (the session's connection ``send`` is wrapped to timestamp it; no bot code is changed);
- outbound: the server sent an answer's first audio delta -> the playback source holds a whole 20 ms frame ready for
  Discord ("ready"); and -> the player read its first non-silent frame ("heard"), which adds the source's designed
  200 ms lead silence and the player's 20 ms clock phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import multiprocessing
import multiprocessing.connection
import random
import resource
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import discord.opus

from bench.loopback_server import ServerProcess, ServerRecords
from bench.timing import Options, percentile
from bot.audio.formats import DISCORD_FRAME_BYTES, DISCORD_FRAME_SAMPLES, DISCORD_SILENCE_FRAME, FRAME_MS
from bot.audio.resample import DiscordToRealtimeResampler
from bot.config import RealtimeConfig
from bot.persona import default_persona, persona_instructions, persona_tools
from bot.realtime import outputs as out
from bot.realtime.client_events import SessionSettings
from bot.realtime.driver import RealtimeSession
from bot.realtime.endpoint import endpoint_for
from bot.realtime.retry import RetryPolicy
from bot.secret import Secret
from bot.voice.playback import OPUS_SILENCE_FRAME, OpusPlaybackSource, PlaybackSource
from bot.voice.receiver import DecodedFrame, VoiceReceiver
from bot.voice.room import RoomMixer
from bot.voice.sender import VoiceSender
from tests.voice.packets import KEY, OPUS_SILENCE, Speaker, _DiscordPyEncryptor, discordpy_encrypt, rtp_header
from tests.voice.packets import speech_48k_stereo as _speech

LEVELS = (1, 10, 50, 75, 100, 200)
SECONDS_PER_LEVEL = 6.0
TURN_PERIOD_S = 3.0
#: The first 0.72 s of the speech fixture is one phrase without a pause the server's VAD would end a turn on.
SPEECH_FRAMES = 36
SILENCE_PACKETS = 5  # what Discord clients send at the end of a talk spurt
ANSWER_MS = 800
VAD_SILENCE_MS = 500
#: The room keeps sending silence this long after the last speaker (the guild session outlasts the VAD's 500 ms).
ROOM_TAIL_MS = 700
#: The issue's target for bot-added latency, each way.
TARGET_P99_MS = 20.0
#: An overloaded level stops this long after its planned end; the ticks it could not process are reported.
OVERLOAD_GRACE_S = 2.0
#: Player variants: discord.py's own (Opus-encodes every frame, silence too), and one that encodes only frames with
#: audio and sends a ready-made Opus silence frame otherwise (what an ``is_opus()`` source could do).
#: And discord.py's player paused while there is nothing to play (``VoiceClient.pause()``, resumed by the next feed):
#: its thread sleeps instead of waking 50 times a second.
#: And the bot's own: one :class:`~bot.voice.sender.VoiceSender` thread for every connection, calling
#: ``VoiceClient.send_audio_packet(opus, encode=False)`` from a single 20 ms clock and skipping idle sources.
SHARED_PLAYER = "VoiceSender (one thread for all)"
PLAYERS = ("discord.py", "encode audio only", "paused when idle", SHARED_PLAYER)
#: The default run adds these levels with two bot processes (shards) and the shared player.
SHARDED_LEVELS = (100, 200)
_SSRC, _USER = 4242, 77
_FRAME_S = FRAME_MS / 1000
_APPEND_PREFIX = '{"type":"input_audio_buffer.append"'
_APPEND_OVERHEAD_CHARS = len('{"type":"input_audio_buffer.append","audio":""}')


@dataclass
class _Conversation:
    """The bot side of one conversation and what it measured."""

    index: int
    session: RealtimeSession
    playback: BenchPlayback
    schedule: list[bytes | None]
    pending_frames: deque[tuple[float, int]] = field(default_factory=deque)  # (handed at, pcm16 bytes)
    inbound_ms: list[float] = field(default_factory=list)
    tick_late_ms: list[float] = field(default_factory=list)
    underrun_frames: int = 0
    packets_undelivered: int = 0
    errors: list[str] = field(default_factory=list)
    answers_heard: int = 0
    barge_ins: int = 0
    response_done: bool = True
    playing: bool = False


class BenchPlayback(PlaybackSource):
    """The bot's playback source, timestamping when each item first has a whole frame ready and first plays."""

    def __init__(self) -> None:
        super().__init__()
        self.ready_s: dict[str, float] = {}
        self.heard_s: dict[str, float] = {}
        self.set_audio_started_handler(self._heard)
        #: Set by every feed: what ``VoiceClient.resume()`` would do for a player paused while idle.
        self.resumed = threading.Event()
        #: Set when the session cleared the source (a barge-in), until the player has seen it.
        self.cut = threading.Event()

    def feed(self, item_id: str, pcm16_24k_mono: bytes) -> None:
        super().feed(item_id, pcm16_24k_mono)
        self.resumed.set()
        if item_id not in self.ready_s and self.buffered_ms >= FRAME_MS:
            self.ready_s[item_id] = time.monotonic()

    def clear(self) -> dict[str, float]:
        """The session cut the answer (barge-in): the silence that follows is not an underrun."""
        played = super().clear()
        self.cut.set()
        return played

    def _heard(self, item_id: str, _clock_s: float) -> None:
        self.heard_s.setdefault(item_id, time.monotonic())


class BenchOpusPlayback(BenchPlayback, OpusPlaybackSource):
    """The bot's Opus source, for the :class:`VoiceSender`, counting its own underruns and answers.

    The sender reads no idle source, so silence between answers is never read. An underrun shows as audio of the
    same item resuming after a gap. The gap is measured in the sender's ticks (``tick_now``). Runs on the sender
    thread.
    """

    def __init__(self, tick_now: Callable[[], int]) -> None:
        super().__init__()
        self._tick_now = tick_now
        self._last_item: str | None = None
        self._last_audio_tick = 0
        self.underrun_frames = 0
        self.answers_heard = 0
        self.barge_ins = 0

    def read(self) -> bytes:
        if self.cut.is_set():
            self.cut.clear()
            if self._last_item is not None:
                self.barge_ins += 1
            self._last_item = None  # the answer was cut: what follows is not an underrun
        packet = super().read()
        if packet and packet != OPUS_SILENCE_FRAME:
            self._last_audio_tick = self._tick_now()
        return packet

    def _heard(self, item_id: str, clock_s: float) -> None:
        super()._heard(item_id, clock_s)
        if item_id == self._last_item:
            self.underrun_frames += max(0, self._tick_now() - self._last_audio_tick - 1)
        else:
            self.answers_heard += 1
        self._last_item = item_id


class _BenchVoice:
    """What ``VoiceClient`` does for the sender: the RTP header and transport encryption of
    ``send_audio_packet`` (minus the UDP ``sendto``), and SPEAKING scheduled on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._encryptor = _DiscordPyEncryptor(KEY)
        self._sequence = 0

    def is_connected(self) -> bool:
        return True

    def send_audio_packet(self, data: bytes, *, encode: bool = True) -> None:
        header = rtp_header(self._sequence % 65536, self._sequence * DISCORD_FRAME_SAMPLES % 2**32, _SSRC)
        discordpy_encrypt(header, data, self._encryptor)
        self._sequence += 1

    def set_speaking_threadsafe(self, speaking: bool) -> None:
        self._loop.call_soon_threadsafe(_no_op)


def _no_op() -> None:
    """Stands for the SPEAKING message discord.py's ``ws.speak`` would send (a few bytes on the voice websocket)."""


def _speaker_turns(turns: int) -> list[list[bytes]]:
    """Per turn, the datagrams one speaker sends: the phrase, then the silence frames (sequence numbers run on)."""
    speech = _speech()[: SPEECH_FRAMES * DISCORD_FRAME_BYTES]
    speaker = Speaker(_SSRC, KEY)
    opus = speaker.opus_frames(speech)
    return [
        [speaker.packet(frame)[1] for frame in opus] + [speaker.packet(OPUS_SILENCE)[1] for _ in range(SILENCE_PACKETS)]
        for _ in range(turns)
    ]


def _schedule(turns: list[list[bytes]], offset_s: float, ticks: int) -> list[bytes | None]:
    """The datagram (or nothing) arriving at each 20 ms tick of one conversation."""
    period = round(TURN_PERIOD_S / _FRAME_S)
    schedule: list[bytes | None] = [None] * round(offset_s / _FRAME_S)
    for packets in turns:
        schedule += packets + [None] * (period - len(packets))
    return (schedule + [None] * ticks)[:ticks]


def _settings() -> SessionSettings:
    tools = persona_tools(default_persona())
    return SessionSettings(
        instructions=persona_instructions(default_persona()),
        tools=tuple(tools.schemas()),
        silence_duration_ms=VAD_SILENCE_MS,
    )


def _instrument_sends(conversation: _Conversation) -> None:
    """Timestamp every append as its ``send`` on the connection returns (its frames are then in the socket).

    An append carrying several frames' audio (should the bot ever merge them) accounts for all of them.
    """
    ws: Any = conversation.session._ws  # the bench reads the driver's live connection; bot code is unchanged
    original = ws.send
    pending, latencies = conversation.pending_frames, conversation.inbound_ms

    async def send(message: Any, text: bool | None = None) -> None:
        await original(message, text=text)
        if isinstance(message, str) and message.startswith(_APPEND_PREFIX):
            sent_s = time.monotonic()
            audio_b64 = len(message) - _APPEND_OVERHEAD_CHARS
            audio_bytes = audio_b64 * 3 // 4 - message.count("=", len(message) - 4)
            while pending and audio_bytes >= pending[0][1]:
                handed_s, size = pending.popleft()
                audio_bytes -= size
                latencies.append((sent_s - handed_s) * 1000)

    ws.send = send


class _ReceiveSide:
    """One conversation's receive path, threaded like :mod:`bot.voice.client`: a voice socket thread hands each
    datagram to the :class:`VoiceReceiver` (decrypt, jitter buffer, Opus decode) and decoded frames to the event loop;
    there a room clock, started by the first frame, ticks the :class:`RoomMixer` every 20 ms (drift-free) until the
    room goes idle, and hands each mix to the resampler and the session. (The bot's client no longer paces the room
    so: it sends a slot when it is complete and keeps the clock for deadlines; ``--only wire`` measures that path.)"""

    def __init__(self, conversation: _Conversation, loop: asyncio.AbstractEventLoop) -> None:
        self._conversation = conversation
        self._loop = loop
        self.room = RoomMixer(time.monotonic, tail_ms=ROOM_TAIL_MS)
        self._receiver = VoiceReceiver(KEY, on_frame=self._frame_from_socket_thread, on_silence=self._silence)
        self._receiver.map_ssrc(_SSRC, _USER)
        self._resampler = DiscordToRealtimeResampler()
        self.clock: asyncio.Task[None] | None = None

    # -- the voice socket thread ---------------------------------------------------------------------------------

    def read_socket(self, start_s: float, deadline_s: float) -> None:
        """Deliver the speaker's datagrams at their 20 ms instants (a thread: discord.py's socket reader)."""
        schedule = self._conversation.schedule
        for tick, datagram in enumerate(schedule):
            if datagram is None:
                continue
            due_s = start_s + tick * _FRAME_S
            time.sleep(max(0.0, due_s - time.monotonic()))
            if time.monotonic() > deadline_s:  # overloaded: stop on time, and say how much never arrived
                self._conversation.packets_undelivered = sum(1 for d in schedule[tick:] if d is not None)
                return
            self._receiver.receive_datagram(datagram)

    def _frame_from_socket_thread(self, frame: DecodedFrame) -> None:
        self._loop.call_soon_threadsafe(self._deliver, frame.pcm16)

    def _silence(self, _ssrc: int, _user_id: int | None) -> None:
        self._loop.call_soon_threadsafe(self.room.end_of_speech, _USER)

    # -- the event loop ------------------------------------------------------------------------------------------

    def _deliver(self, pcm16: bytes) -> None:
        self.room.push(_USER, pcm16)
        if self.clock is None or self.clock.done():
            self.clock = self._loop.create_task(self._run_clock())

    async def _run_clock(self) -> None:
        try:
            await self._tick_until_idle()
        except Exception as exc:  # a failure in the bot's code fails the level (reported), not the whole run
            self._conversation.errors.append(f"{type(exc).__name__}: {exc}"[:300])

    async def _tick_until_idle(self) -> None:
        conversation = self._conversation
        start_s = self._loop.time()
        frames = 0
        while True:
            mixed = self.room.tick()
            if mixed is None and not self.room.active:
                self._receiver.flush()
                return
            if mixed is not None:
                handed_s = time.monotonic()
                pcm = self._resampler.process(mixed)
                if pcm:
                    conversation.pending_frames.append((handed_s, len(pcm)))
                    conversation.session.push_audio(pcm)
            frames += 1
            due_s = start_s + frames * _FRAME_S
            await asyncio.sleep(max(0.0, due_s - self._loop.time()))
            conversation.tick_late_ms.append(max(0.0, self._loop.time() - due_s) * 1000)


class _Sender:
    """What discord.py's player does with each frame a source gives it: Opus-encode it (unless told to send a
    ready-made Opus silence frame for silence) and transport-encrypt it. Also counts underruns."""

    def __init__(self, conversation: _Conversation, *, encode_silence: bool) -> None:
        self.conversation = conversation
        self._encode_silence = encode_silence
        self._encoder = discord.opus.Encoder()
        self._encryptor = _DiscordPyEncryptor(KEY)
        self._frames = 0

    @property
    def idle(self) -> bool:
        """Nothing is playing or queued (a player could pause)."""
        return not self.conversation.playing and not self.conversation.playback.is_playing

    def play_frame(self) -> None:
        conversation, source = self.conversation, self.conversation.playback
        if source.cut.is_set():
            source.cut.clear()
            if conversation.playing:
                conversation.barge_ins += 1
                conversation.playing = False  # the answer was cut: the silence that follows is not an underrun
        frame = source.read()
        if self._encode_silence or frame is not DISCORD_SILENCE_FRAME:
            encoded = self._encoder.encode(frame, DISCORD_FRAME_SAMPLES)
        else:
            encoded = OPUS_SILENCE
        header = rtp_header(self._frames, self._frames * DISCORD_FRAME_SAMPLES, _SSRC)
        discordpy_encrypt(header, encoded, self._encryptor)
        self._frames += 1
        if frame is not DISCORD_SILENCE_FRAME:
            if not conversation.playing:
                conversation.answers_heard += 1
            conversation.playing = True
        elif conversation.playing:
            if conversation.response_done and not source.is_playing:
                conversation.playing = False  # the answer is over
            else:
                conversation.underrun_frames += 1


def _player(conversation: _Conversation, start_s: float, stop: threading.Event, player: str) -> None:
    """discord.py's player loop (one thread per voice connection): a frame every 20 ms, drift-free."""
    sender = _Sender(conversation, encode_silence=player != PLAYERS[1])
    pause_when_idle = player == PLAYERS[2]
    source = conversation.playback
    frames = 0
    while not stop.is_set():
        if pause_when_idle and sender.idle:
            source.resumed.clear()
            if not source.is_playing:  # paused until the next feed, then a fresh 20 ms clock (as discord.py does)
                while not source.resumed.wait(0.1) and not stop.is_set():
                    pass
                start_s, frames = time.monotonic(), 0
                continue
        sender.play_frame()
        frames += 1
        time.sleep(max(0.0, start_s + frames * _FRAME_S - time.monotonic()))


async def _watch_events(conversation: _Conversation) -> None:
    async for event in conversation.session.events():
        match event:
            case out.AssistantAudio():
                conversation.response_done = False
            case out.ResponseFinished():
                conversation.response_done = True


def _join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


def _rss_mb(field_name: str = "VmRSS") -> float:
    """This process's resident memory (``VmRSS``) or its peak (``VmHWM``), in MB, from ``/proc/self/status``.

    (``getrusage``'s ``ru_maxrss`` survives ``exec`` on Linux: a spawned child would report its parent's peak.)
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _drive(url: str, indices: range, seconds: float, seed: int, player: str) -> dict[str, Any]:
    rng = random.Random(seed)
    ticks = round(seconds / _FRAME_S)
    turns = _speaker_turns(math.ceil(seconds / TURN_PERIOD_S) + 1)
    rss_before_mb = _rss_mb()
    settings, tools = _settings(), persona_tools(default_persona())
    conversations: list[_Conversation] = []
    sender = VoiceSender()
    for index in indices:
        config = RealtimeConfig(provider="custom", url=f"{url}?conv={index}", api_key=Secret("test-key"), dialect="ga")
        playback = BenchOpusPlayback(lambda: sender.stats.ticks) if player == SHARED_PLAYER else BenchPlayback()
        session = RealtimeSession(
            endpoint_for(config), settings, tools, sink=playback, policy=RetryPolicy(), open_timeout_s=60.0
        )
        offset_s = rng.uniform(0, TURN_PERIOD_S)
        conversations.append(_Conversation(index, session, playback, _schedule(turns, offset_s, ticks)))
    for batch in range(0, len(conversations), 50):
        await asyncio.gather(*(c.session.start() for c in conversations[batch : batch + 50]))
    for conversation in conversations:
        _instrument_sends(conversation)
    gc.collect()
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    wall_start_s, cpu_start_s, loop_cpu_start_s = time.monotonic(), time.process_time(), time.thread_time()
    watchers = [loop.create_task(_watch_events(c)) for c in conversations]
    players: list[threading.Thread] = []
    if player == SHARED_PLAYER:
        for conversation in conversations:
            sender.add(_BenchVoice(loop), conversation.playback)
    else:
        players = [
            threading.Thread(target=_player, args=(c, time.monotonic() + 0.05 + rng.uniform(0, _FRAME_S), stop, player))
            for c in conversations
        ]
    for thread in players:
        thread.start()
    deadline_s = time.monotonic() + seconds + OVERLOAD_GRACE_S
    sides = [_ReceiveSide(c, loop) for c in conversations]
    readers = [
        threading.Thread(target=side.read_socket, args=(time.monotonic() + 0.05 + rng.uniform(0, _FRAME_S), deadline_s))
        for side in sides
    ]
    for thread in readers:
        thread.start()
    await asyncio.to_thread(_join_all, readers)
    tails = {side.clock for side in sides if side.clock is not None}  # the rooms' silence tails
    if tails:
        await asyncio.wait(tails, timeout=max(0.0, deadline_s - time.monotonic()))
    for clock in tails:
        clock.cancel()
    stop.set()
    for thread in players:
        thread.join()
    sender.close()
    for conversation in conversations:
        if isinstance(conversation.playback, BenchOpusPlayback):
            conversation.underrun_frames = conversation.playback.underrun_frames
            conversation.answers_heard = conversation.playback.answers_heard
            conversation.barge_ins = conversation.playback.barge_ins
    cpu_s, wall_s = time.process_time() - cpu_start_s, time.monotonic() - wall_start_s
    loop_cpu_s = time.thread_time() - loop_cpu_start_s
    peak_rss_mb = _rss_mb("VmHWM")
    for conversation in conversations:
        await conversation.session.close()
    for watcher in watchers:
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return {
        "cpu_s": cpu_s,
        "loop_cpu_s": loop_cpu_s,
        "wall_s": wall_s,
        "peak_rss_mb": peak_rss_mb,
        "rss_before_mb": rss_before_mb,
        "inbound_ms": [v for c in conversations for v in c.inbound_ms],
        "appends_unsent": sum(len(c.pending_frames) for c in conversations),
        "tick_late_ms": [v for c in conversations for v in c.tick_late_ms],
        "ready_s": {f"{c.index}/{item}": t for c in conversations for item, t in c.playback.ready_s.items()},
        "heard_s": {f"{c.index}/{item}": t for c in conversations for item, t in c.playback.heard_s.items()},
        "underrun_frames": sum(c.underrun_frames for c in conversations),
        "packets_undelivered": sum(c.packets_undelivered for c in conversations),
        "errors": sorted({e for c in conversations for e in c.errors}),
        "answers_heard": sum(c.answers_heard for c in conversations),
        "barge_ins": sum(c.barge_ins for c in conversations),
        "reconnects": sum(c.session.reconnects for c in conversations),
        "dropped_audio_bytes": sum(c.session.dropped_audio_bytes for c in conversations),
    }


def _bot_process(
    url: str, indices: range, seconds: float, seed: int, player: str, pipe: multiprocessing.connection.Connection
) -> None:
    pipe.send(asyncio.run(_drive(url, indices, seconds, seed, player)))


def _run_bots(url: str, shares: list[range], seconds: float, seed: int, player: str) -> list[dict[str, Any]]:
    """One bot process per share of the conversations, all at once; their results."""
    context = multiprocessing.get_context("spawn")
    started = []
    for number, indices in enumerate(shares):
        parent, child = context.Pipe()
        args = (url, indices, seconds, seed + number, player, child)
        process = context.Process(target=_bot_process, args=args, daemon=True)
        process.start()
        child.close()
        started.append((process, parent))
    results: list[dict[str, Any]] = []
    try:
        for _process, parent in started:
            if not parent.poll(seconds + 120.0):
                raise RuntimeError(f"a bot process ({len(shares)} in all) did not report")
            results.append(parent.recv())
    finally:
        for process, _parent in started:
            process.join(10.0)
            if process.is_alive():
                process.terminate()
                process.join(10.0)
    return results


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The bot processes' results as one: CPU and memory summed, samples pooled, the busiest event loop."""
    merged: dict[str, Any] = {
        "wall_s": max(r["wall_s"] for r in results),
        "loop_busy": max(r["loop_cpu_s"] / r["wall_s"] for r in results),
    }
    for key, value in results[0].items():
        if key in merged or key == "loop_cpu_s":
            continue
        if isinstance(value, list):
            merged[key] = [v for r in results for v in r[key]]
        elif isinstance(value, dict):
            merged[key] = {k: v for r in results for k, v in r[key].items()}
        else:
            merged[key] = sum(r[key] for r in results)
    return merged


def _latency(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.50), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(max(values, default=0.0), 2),
    }


def run_level(
    count: int, seconds: float, player: str = PLAYERS[0], *, processes: int = 1, seed: int = 1
) -> dict[str, Any]:
    """One load level: ``count`` conversations for ``seconds`` with a ``player`` variant, shared out over
    ``processes`` bot processes (shards); figures for the report."""
    if count < 1 or not 1 <= processes <= count:
        raise ValueError(f"need 1 <= processes <= conversations, got {processes} for {count}")
    params = {"answer_ms": ANSWER_MS, "chunk_ms": 100, "pace": 2.0, "vad_silence_ms": VAD_SILENCE_MS}
    bounds = [count * number // processes for number in range(processes + 1)]
    shares = [range(bounds[number], bounds[number + 1]) for number in range(processes)]
    with ServerProcess("load", params) as server:
        bot = _merge(_run_bots(server.url, shares, seconds, seed, player))
        records: ServerRecords = server.stop()
    sent = records.first_delta_sent_s
    ready = [(t - sent[key]) * 1000 for key, t in bot["ready_s"].items() if key in sent]
    heard = [(t - sent[key]) * 1000 for key, t in bot["heard_s"].items() if key in sent]
    return {
        "conversations": count,
        "player": player,
        "processes": processes,
        "seconds": round(bot["wall_s"], 2),
        "bot_cpu_s": round(bot["cpu_s"], 2),
        "bot_cores_used": round(bot["cpu_s"] / bot["wall_s"], 2),
        "event_loop_busy": round(bot["loop_busy"], 2),
        "bot_cpu_ms_per_conversation_s": round(1000 * bot["cpu_s"] / (count * bot["wall_s"]), 2),
        "server_cpu_s": round(records.cpu_s, 2),
        "peak_rss_mb": round(bot["peak_rss_mb"], 1),
        "rss_per_conversation_mb": round(max(0.0, bot["peak_rss_mb"] - bot["rss_before_mb"]) / count, 2),
        "inbound": _latency(bot["inbound_ms"]),
        "outbound_ready": _latency(ready),
        "outbound_heard": _latency(heard),
        "room_clock_late": _latency(bot["tick_late_ms"]),
        "answers_sent": len(sent),
        "answers_heard": bot["answers_heard"],
        "underrun_frames": bot["underrun_frames"],
        "packets_undelivered": bot["packets_undelivered"],
        "errors": sorted(set(bot["errors"]))[:20],
        "barge_ins": bot["barge_ins"],
        "reconnects": bot["reconnects"],
        "dropped_audio_bytes": bot["dropped_audio_bytes"],
        "appends_unsent": bot["appends_unsent"],
        "server_connections": records.connections,
        "schema_problems": records.schema_problems,
        "script_errors": records.script_errors,
    }


def meets_targets(row: dict[str, Any]) -> bool:
    """The issue's targets: no underruns, bot-added p99 <= 20 ms each way (inbound and ready), nothing left behind."""
    return bool(
        not row["errors"]
        and row["underrun_frames"] == 0
        and row["packets_undelivered"] == 0
        and row["answers_heard"] >= row["answers_sent"] - row["conversations"]  # the last answer may end after the run
        and row["inbound"]["count"] > 0
        and row["inbound"]["p99_ms"] <= TARGET_P99_MS
        and row["outbound_ready"]["p99_ms"] <= TARGET_P99_MS
        and row["room_clock_late"]["p99_ms"] <= TARGET_P99_MS
    )


def run(options: Options) -> dict[str, Any]:
    """Every load level in turn (``--load-levels``, ``--load-seconds``; ``--quick``: 2 conversations for 4 s)."""
    levels = options.load_levels or ((2,) if options.quick else LEVELS)
    seconds = options.load_seconds or (4.0 if options.quick else SECONDS_PER_LEVEL)
    processes = options.load_processes or 1
    rows = [
        run_level(count, seconds, player, processes=min(processes, count)) for count in levels for player in PLAYERS
    ]
    if not options.quick and options.load_levels is None and processes == 1:
        rows += [run_level(count, seconds, SHARED_PLAYER, processes=2) for count in SHARDED_LEVELS]
    return {"seconds_per_level": seconds, "processes": processes, "levels": rows}


def iter_markdown(result: dict[str, Any]) -> Iterator[str]:
    yield "## 3. Load: concurrent conversations on loopback"
    yield ""
    yield (
        f"Each level runs {result['seconds_per_level']} s: every conversation has a Realtime session on the local "
        "test server (its own process), a synthetic speaker whose real Opus packets go through the receiver, room "
        "mixer, resampler and session every 20 ms, and a player reading, Opus-encoding and "
        f"encrypting a frame every 20 ms. The speaker talks 0.72 s every {TURN_PERIOD_S} s; the server answers each "
        f"turn with {ANSWER_MS} ms of audio at twice real time. Latencies are bot-added, p50 / p99 in ms: inbound = "
        "mixed frame handed to the session -> its append written to the socket; ready = the server sent the first "
        "answer delta -> a 20 ms frame ready in the playback source; heard = -> the first non-silent frame read (adds "
        "the source's 200 ms lead silence and the player's clock phase). Cores used = bot CPU s / wall s (this "
        "machine has 2; the server process's CPU is apart; with several bot processes, CPU and memory are their "
        "sums, samples are pooled and the busiest event loop is shown); event loop busy = the event loop "
        "thread's own CPU s / wall s (1.0 = saturated). Room clock late = how late the 20 ms room tick ran "
        "(frames wait that long before they are even handed to the session). Packets undelivered = voice packets an "
        f"overloaded level never got to ({OVERLOAD_GRACE_S} s after its planned end). Players: "
        "`discord.py` encodes every frame it reads, silence too, as `VoiceClient.play` does with a PCM source; "
        "`encode audio only` sends a ready-made Opus silence frame instead (what a source with `is_opus()` "
        "could do); `paused when idle` is discord.py's player paused while nothing plays (`VoiceClient.pause()`, "
        "resumed by the next answer), so its thread sleeps; these three are a discord.py `AudioPlayer`-style thread "
        f"per connection. `{SHARED_PLAYER}` is what the bot runs: its `bot.voice.sender.VoiceSender`, a single "
        "thread for every connection on one 20 ms clock that reads no idle source, with its `OpusPlaybackSource`."
    )
    yield ""
    yield (
        "| conversations | bot processes | player | bot cores used | event loop busy | bot CPU ms / conversation-s "
        "| server CPU s | peak RSS MB | MB / conversation | inbound p50 / p99 | ready p50 / p99 | heard p50 / p99 "
        "| room clock late p99 "
        "| answers heard / sent | underrun frames | packets undelivered |"
    )
    yield "| ---: | ---: | --- |" + " ---: |" * 13
    for row in result["levels"]:
        inbound, ready, heard = row["inbound"], row["outbound_ready"], row["outbound_heard"]
        yield (
            f"| {row['conversations']} | {row.get('processes', 1)} | {row['player']} | {row['bot_cores_used']} "
            f"| {row['event_loop_busy']} "
            f"| {row['bot_cpu_ms_per_conversation_s']} "
            f"| {row['server_cpu_s']} | {row['peak_rss_mb']} | {row['rss_per_conversation_mb']} "
            f"| {inbound['p50_ms']} / {inbound['p99_ms']} | {ready['p50_ms']} / {ready['p99_ms']} "
            f"| {heard['p50_ms']} / {heard['p99_ms']} | {row['room_clock_late']['p99_ms']} "
            f"| {row['answers_heard']} / {row['answers_sent']} | {row['underrun_frames']} "
            f"| {row['packets_undelivered']} |"
        )
    rows = result["levels"]
    yield ""
    for processes in sorted({r.get("processes", 1) for r in rows}):
        for player in PLAYERS:
            runs = [r for r in rows if r["player"] == player and r.get("processes", 1) == processes]
            if not runs:
                continue
            met = [r["conversations"] for r in runs if meets_targets(r)]
            best = f"up to **{max(met)}** conversations" if met else "at **no** level run"
            yield f"- Targets met with {processes} bot process(es) and the `{player}` player: {best}."
    yield ""
    yield (
        f"Across all levels: {sum(r['barge_ins'] for r in rows)} barge-ins (the next turn began while an answer "
        f"played), {sum(r['reconnects'] for r in rows)} reconnects, {sum(r['dropped_audio_bytes'] for r in rows)} "
        f"audio bytes dropped, {sum(len(r['schema_problems']) for r in rows)} schema problems and "
        f"{sum(len(r['script_errors']) for r in rows)} server script errors, "
        f"{sum(len(r['errors']) for r in rows)} errors in the bot's receive path."
    )
