"""The loopback voice gateway of the wire benchmark, in a process of its own, with its own cost and lateness measured.

One :class:`~tests.voice.fake_gateway.FakeVoiceServer` per conversation (a guild's voice server), each a DAVE call
(``dave_protocol_version=1``) with one simulated member, alice, who talks: her real libopus frames are E2EE-encrypted
by her DAVE session and transport-encrypted at the moment each packet is sent, as a Discord client does. The bot's
packets are transport-decrypted and forwarded to her, and her DAVE session decrypts them (what she hears).

All conversations' speakers run on one drift-free 20 ms clock. For each datagram the gateway records when it was due
and when ``sendto`` returned, so its own lateness is reported apart from the bot's figures; so is its CPU time.

Driven over a pipe by :class:`GatewayProcess`: ``setup`` (start the servers; their endpoints back), ``await_bot``
(every call has the bot in its MLS group; SPEAKING sent), ``go`` (talk from a given monotonic instant for a given
time; the records back), ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import random
import time
from dataclasses import dataclass, field
from typing import Any

from bot.audio.formats import DISCORD_FRAME_BYTES, FRAME_MS
from tests.voice.dave_member import E2eeSpeaker
from tests.voice.fake_gateway import FakeVoiceServer
from tests.voice.packets import OPUS_SILENCE, Speaker, speech_48k_stereo

ALICE = 5
SPEAKER_SSRC_BASE = 10_000
#: The first 0.72 s of the speech fixture is one phrase without a pause the server's VAD would end a turn on.
SPEECH_FRAMES = 36
SILENCE_PACKETS = 5  # what Discord clients send at the end of a talk spurt
TIMEOUT_S = 120.0
_FRAME_S = FRAME_MS / 1000


@dataclass
class GatewayRecords:
    """Per conversation: each datagram sent to the bot (RTP sequence, turn, voiced, when ``sendto`` returned: the
    datagram is then in the bot's socket buffer, loopback delivery being immediate); the gateway's own figures."""

    sent: list[list[tuple[int, int, bool, float]]] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)  # sendto return - due, every datagram
    bot_packets: list[int] = field(default_factory=list)  # the bot's packets that reached each call
    heard_audio_frames: list[int] = field(default_factory=list)  # alice decrypted these audible frames
    undecryptable: list[int] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0


def turn_frames() -> list[bytes]:
    """One talk spurt's Opus frames: the phrase, then the silence frames that end it."""
    speech = speech_48k_stereo()[: SPEECH_FRAMES * DISCORD_FRAME_BYTES]
    return [*Speaker(ssrc=1).opus_frames(speech), *[OPUS_SILENCE] * SILENCE_PACKETS]


def schedule(frames: list[bytes], offset_s: float, period_s: float, ticks: int) -> list[tuple[int, bytes] | None]:
    """What one speaker sends at each 20 ms tick: (turn number, Opus frame) or nothing."""
    period = round(period_s / _FRAME_S)
    out: list[tuple[int, bytes] | None] = [None] * round(offset_s / _FRAME_S)
    turn = 0
    while len(out) < ticks:
        out += [(turn, frame) for frame in frames] + [None] * max(0, period - len(frames))
        turn += 1
    return out[:ticks]


#: The voice heartbeat the gateway asks for: Discord's, as its voice Hello documents it (op 8, 41,250 ms). The tests'
#: voice server asks for one every 200 ms (quick tests); here that would charge the bot 200 times Discord's heartbeat
#: work per connection (a keep-alive thread wake-up and a WebSocket round trip each time).
VOICE_HEARTBEAT_INTERVAL_MS = 41_250


class _Gateway:
    def __init__(self) -> None:
        self.servers: list[FakeVoiceServer] = []
        self.speakers: list[E2eeSpeaker] = []

    async def setup(self, count: int) -> list[str]:
        for number in range(count):
            server = FakeVoiceServer(dave_protocol_version=1, heartbeat_interval_ms=VOICE_HEARTBEAT_INTERVAL_MS)
            await server.start()
            self.servers.append(server)
            await server.add_member(ALICE, SPEAKER_SSRC_BASE + number)
        return [server.endpoint for server in self.servers]

    async def await_bot(self) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not all(_bot_in_group(server) for server in self.servers):
            if time.monotonic() > deadline:
                missing = sum(not _bot_in_group(server) for server in self.servers)
                raise RuntimeError(f"the bot joined no DAVE group in {missing} of {len(self.servers)} calls")
            await asyncio.sleep(0.05)
        for server in self.servers:
            member = server.members[ALICE]
            self.speakers.append(member.speaker())
            await server.speaking(ALICE, member.ssrc)

    async def talk(self, start_s: float, seconds: float, period_s: float, seed: int) -> GatewayRecords:
        """Talk from ``start_s`` for ``seconds`` (the warm-up and the measured time), then let the answers end."""
        rng = random.Random(seed)
        frames = turn_frames()
        ticks = round(seconds / _FRAME_S)
        plans = [schedule(frames, rng.uniform(0, period_s), period_s, ticks) for _ in self.servers]
        records = GatewayRecords(sent=[[] for _ in self.servers])
        for server in self.servers:
            server.voice_datagrams.clear()
        cpu_start_s = time.process_time()
        await asyncio.sleep(max(0.0, start_s - time.monotonic()))
        for tick in range(ticks):
            due_s = start_s + tick * _FRAME_S
            for number, plan in enumerate(plans):
                step = plan[tick]
                if step is None:
                    continue
                turn, opus = step
                sequence, datagram = self.speakers[number].packet(opus)
                self.servers[number].send_voice(datagram)
                sent_s = time.monotonic()
                records.late_ms.append((sent_s - due_s) * 1000)
                records.sent[number].append((sequence, turn, opus != OPUS_SILENCE, sent_s))
            await asyncio.sleep(max(0.0, due_s + _FRAME_S - time.monotonic()))
        await asyncio.sleep(2.0)  # the last answers reach the members
        records.cpu_s = time.process_time() - cpu_start_s
        records.wall_s = time.monotonic() - start_s
        for server in self.servers:
            member = server.members[ALICE]
            records.bot_packets.append(len(server.voice_datagrams))
            records.heard_audio_frames.append(sum(1 for frame in member.heard if frame.e2ee))
            records.undecryptable.append(member.undecryptable)
            server.voice_datagrams.clear()
            member.heard.clear()
        return records

    async def close(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                await server.close()


def _bot_in_group(server: FakeVoiceServer) -> bool:
    return (
        server.dave is not None
        and server.bot_user_id is not None
        and server.bot_user_id in server.dave.members
        and server.dave_settled
    )


async def _serve(pipe: multiprocessing.connection.Connection) -> None:
    gateway = _Gateway()
    loop = asyncio.get_running_loop()
    try:
        while True:
            command, *args = await loop.run_in_executor(None, pipe.recv)
            try:
                if command == "setup":
                    reply: Any = await gateway.setup(*args)
                elif command == "await_bot":
                    await gateway.await_bot()
                    reply = None
                elif command == "go":
                    reply = await gateway.talk(*args)
                elif command == "close":
                    pipe.send(None)
                    return
                else:
                    raise ValueError(f"unknown gateway command {command!r}")
            except Exception as error:  # the parent reports it and stops the run
                reply = RuntimeError(f"{type(error).__name__}: {error}")
            pipe.send(reply)
    finally:
        await gateway.close()


def _process_main(pipe: multiprocessing.connection.Connection) -> None:
    asyncio.run(_serve(pipe))


class GatewayProcess:
    """``with GatewayProcess() as gateway: gateway.call("setup", 10) ...``; each call waits for its reply."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_process_main, args=(child,), daemon=True)
        self._process.start()
        child.close()

    def call(self, command: str, *args: Any, timeout_s: float = TIMEOUT_S) -> Any:
        self._pipe.send((command, *args))
        if not self._pipe.poll(timeout_s):
            raise RuntimeError(f"the voice gateway process did not answer {command!r} in {timeout_s:g} s")
        reply = self._pipe.recv()
        if isinstance(reply, Exception):
            raise reply
        return reply

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.call("close", timeout_s=30.0)
        self._process.join(30.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10.0)
