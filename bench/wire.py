"""Load at the wire: N conversations through the whole real bot, timed from socket to socket (issue 16, item 1).

Three kinds of process, so that each one's CPU is its own and the harness is not blamed on the bot:

- the **bot** (one process per share, ``--load-processes``; the issue's target is one per core): the production
  ``VoiceBot`` with its cogs and :class:`~bot.session.wiring.GuildSessionFactory`, one guild per conversation, each
  joined with ``/join`` (:mod:`tests.whole_bot`'s loopback bot; only Discord's main gateway and HTTP API are
  stand-ins). So the receive client (discord.py's socket thread, the bot's receiver with transport and DAVE
  decryption, jitter buffer and libopus decode, the hop to the event loop, the room mixer with its priming), the
  guild session's handlers, the Realtime driver and the one ``VoiceSender`` (Opus encode, DAVE and transport
  encryption, ``sendall``) are the real code;
- the **voice gateway** (:mod:`bench.wire_gateway`): one loopback voice server per guild with a real DAVE group, whose
  member alice talks and hears; its lateness and CPU are reported beside the bot's figures;
- the **Realtime server** (:mod:`bench.loopback_server`, script ``wire``): the server VAD ends each turn, the bot
  labels it and asks for the answer, the stand-in model waits :data:`MODEL_DELAY_MS` and streams
  :data:`ANSWER_MS` of audio at twice real time.

Inbound starts when the gateway's ``sendto`` of a datagram returned (it is then in the bot's socket buffer).
Timestamps in the bot process come from probes wrapped around the real methods at the points where bytes cross a
socket (:class:`_Probes`; no bot code is changed, every call goes on to the original): a datagram handed to the
receiver by discord.py's socket reader (``VoiceReceiver.receive_datagram``: the socket wait, and the RTP sequence
that pairs it with the gateway's stamp), an append returned from ``send`` and a
message returned from ``recv`` on the Realtime WebSocket (``ClientConnection``), and a packet handed to the UDP
socket (the bot's ``ReceivingConnectionState.send_packet``, with whether ``send_audio_packet`` was given audio or
the Opus silence frame). What is computed from them is in :mod:`bench.wire_stats`.

Busy, as the load benchmark defines it: each conversation's speaker talks 0.72 s every :data:`TURN_PERIOD_S`
(random phases) and every turn is answered with :data:`ANSWER_MS` of audio. Each level runs :data:`RUNS` runs of
:data:`SECONDS_PER_RUN` s, each from fresh processes and measured after :data:`WARM_UP_S` of talk (the guilds were
just joined); a level is held only if every run holds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import discord
from websockets.asyncio.client import ClientConnection

from bench import wire_stats
from bench.loopback_server import ServerProcess
from bench.timing import Options, percentile
from bench.wire_gateway import ALICE, SPEAKER_SSRC_BASE, VOICE_HEARTBEAT_INTERVAL_MS, GatewayProcess, GatewayRecords
from bench.wire_stats import Append, Conversation, Packet, ServerTurn
from bot.config import load_config
from bot.persona.library import PersonaLibrary
from bot.realtime.retry import RetryPolicy
from bot.session.guild_session import GuildSession
from bot.session.wiring import GuildSessionFactory
from bot.store.sqlite import SqliteStore
from bot.voice.connection_state import ReceivingConnectionState
from bot.voice.playback import OPUS_SILENCE_FRAME
from bot.voice.receiver import VoiceReceiver
from cogs.persona import PersonaCog
from cogs.persona_admin import PersonaAdminCog
from cogs.voice import VoiceCog
from cogs.voice_admin import VoiceAdminCog
from tests.discord_world import FakeInteraction, make_world
from tests.voice.fake_gateway import FakeMainGateway
from tests.whole_bot import LoopbackVoiceBot

LEVELS = (10, 50, 100, 200)
RUNS = 5
SECONDS_PER_RUN = 30.0
QUICK_LEVELS = (2,)
QUICK_RUNS = 2
QUICK_SECONDS = 6.0
TURN_PERIOD_S = 3.0
ANSWER_MS = 800
MODEL_DELAY_MS = 100
VAD_SILENCE_MS = 500
#: Speakers start this long after the command, so every process is waiting when the clock starts.
START_DELAY_S = 1.0
#: The speakers talk this long before the measured time starts (the bot has just joined every guild: its first
#: seconds are setup, not load); spurts begun in it and answers begun in it are not counted.
WARM_UP_S = 5.0
QUICK_WARM_UP_S = 1.0
#: Answers whose first delta the server sent later than this before the bot stopped measuring are not counted.
LAST_ANSWER_MARGIN_S = 2.0
SETUP_TIMEOUT_S = 300.0
#: Conversation n is guild FIRST_GUILD + n, whose speaker sends on SSRC SPEAKER_SSRC_BASE + n.
FIRST_GUILD = 1000
_APPEND = '"input_audio_buffer.append"'
_DELTA = '"response.output_audio.delta"'
_ITEM_ID = re.compile(r'"item_id":\s*"([^"]+)"')
_PEER_TAG = re.compile(r"_(c\d+)_\d+$")


class _Probes:
    """Timestamps at the bot's sockets, by the id of the object whose method was called (see the module docstring)."""

    def __init__(self) -> None:
        self.arrivals: defaultdict[int, list[tuple[int, int, float]]] = defaultdict(list)  # (ssrc, sequence, s)
        self.appends: defaultdict[int, list[Append]] = defaultdict(list)
        self.deltas: defaultdict[int, list[tuple[float, str]]] = defaultdict(list)
        self.packets: defaultdict[int, list[Packet]] = defaultdict(list)
        self._items_seen: set[str] = set()
        self._audible = threading.local()

    def clear(self) -> None:
        for records in (self.arrivals, self.appends, self.deltas, self.packets):
            records.clear()

    def install(self) -> None:
        """Wrap the four methods (in this process only: the bench's bot process)."""
        probes = self
        receive = VoiceReceiver.receive_datagram
        send, recv = ClientConnection.send, ClientConnection.recv
        send_audio_packet, send_packet = discord.VoiceClient.send_audio_packet, ReceivingConnectionState.send_packet

        def receive_datagram(receiver: VoiceReceiver, data: bytes) -> None:
            arrived_s = time.monotonic()
            if len(data) >= 12:
                ssrc, sequence = int.from_bytes(data[8:12], "big"), int.from_bytes(data[2:4], "big")
                probes.arrivals[id(receiver)].append((ssrc, sequence, arrived_s))
            receive(receiver, data)

        async def ws_send(ws: ClientConnection, message: Any, *, text: bool | None = None) -> None:
            await send(ws, message, text=text)
            if isinstance(message, str) and _APPEND in message[:128]:
                written_s = time.monotonic()
                audio_bytes, zeros = _append_audio(message)
                probes.appends[id(ws)].append(Append(written_s, audio_bytes, zeros))

        async def ws_recv(ws: ClientConnection, decode: bool | None = None) -> Any:
            message = await recv(ws, decode)
            if isinstance(message, str) and _DELTA in message[:128]:
                read_s = time.monotonic()
                found = _ITEM_ID.search(message)
                if found and found[1] not in probes._items_seen:
                    probes._items_seen.add(found[1])
                    probes.deltas[id(ws)].append((read_s, found[1]))
            return message

        def voice_send_audio_packet(voice: discord.VoiceClient, data: bytes, *, encode: bool = True) -> None:
            probes._audible.value = data != OPUS_SILENCE_FRAME
            send_audio_packet(voice, data, encode=encode)

        def state_send_packet(state: ReceivingConnectionState, packet: bytes) -> None:
            probes.packets[id(state)].append(Packet(time.monotonic(), getattr(probes._audible, "value", True)))
            send_packet(state, packet)

        VoiceReceiver.receive_datagram = receive_datagram  # type: ignore[method-assign,assignment]
        ClientConnection.send = ws_send  # type: ignore[method-assign,assignment]
        ClientConnection.recv = ws_recv  # type: ignore[method-assign,assignment]
        discord.VoiceClient.send_audio_packet = voice_send_audio_packet  # type: ignore[method-assign,assignment]
        ReceivingConnectionState.send_packet = state_send_packet  # type: ignore[method-assign,assignment]


def _append_audio(message: str) -> tuple[int, int]:
    """(audio bytes, leading zero bytes) of an append, read from its base64 without decoding it (cheap: the probe
    runs on the bot's event loop for every append). Zero bytes encode as ``A``: 4 characters carry 3 bytes."""
    start = message.find('"audio":"')
    if start < 0:
        audio = base64.b64decode(json.loads(message)["audio"])
        return len(audio), len(audio) - len(audio.lstrip(b"\0"))
    start += len('"audio":"')
    encoded = message[start : message.index('"', start)]
    audio_bytes = len(encoded) * 3 // 4 - (len(encoded) - len(encoded.rstrip("=")))
    return audio_bytes, min(audio_bytes, (len(encoded) - len(encoded.lstrip("A"))) * 6 // 8)


# -- the bot process ---------------------------------------------------------------------------------------------------


class _Endpoint:
    """What :class:`~tests.voice.fake_gateway.FakeMainGateway` reads of a voice server: its endpoint."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint


async def _bot(
    realtime_url: str, endpoints: list[str], first_guild: int, pipe: multiprocessing.connection.Connection
) -> None:
    """Run the whole bot with one guild per endpoint; answer the parent's commands (``go``, ``stop``)."""
    probes = _Probes()
    probes.install()
    guild_ids = [first_guild + number for number in range(len(endpoints))]

    class WireBot(LoopbackVoiceBot):
        """The loopback bot with a voice server per guild."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(_Endpoint(endpoints[0]), **kwargs)  # type: ignore[arg-type]
            self.gateways = {
                guild: FakeMainGateway(self, _Endpoint(endpoint))  # type: ignore[arg-type]
                for guild, endpoint in zip(guild_ids, endpoints, strict=True)
            }

        def _get_websocket(self, guild_id: int | None = None, *, shard_id: int | None = None) -> Any:
            return self.gateways.get(guild_id, self.main_gateway) if guild_id is not None else self.main_gateway

    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="wire-") as data_dir:
        env = {
            "DISCORD_TOKEN": "discord-token-abcdef",
            "REALTIME_PROVIDER": "custom",
            "REALTIME_URL": realtime_url,
            "REALTIME_API_KEY": "test-key",
            "REALTIME_DIALECT": "ga",
            "DATA_DIR": data_dir,
        }
        config = load_config(env, env_file=None)
        store = await SqliteStore.in_data_dir(Path(data_dir))
        for guild in guild_ids:
            await store.update(guild, {"silence_ms": VAD_SILENCE_MS})
        personas = PersonaLibrary(Path(data_dir) / "personas")
        factory = GuildSessionFactory(config, store, personas, retry_policy=RetryPolicy())
        bot = WireBot(config=config, store=store, personas=personas, session_factory=factory)
        async with bot:
            for cog in (VoiceCog(bot), VoiceAdminCog(bot), PersonaCog(bot), PersonaAdminCog(bot)):
                await bot.add_cog(cog)
            worlds = [make_world(bot, guild) for guild in guild_ids]
            voice_cog: Any = bot.get_cog("VoiceCog")
            for world in worlds:
                fake = FakeInteraction(
                    client=bot, guild=world.guild, user=world.member(ALICE), channel=world.text_channel()
                )
                fake.command = voice_cog.join
                await voice_cog.join.callback(voice_cog, fake.as_interaction())
            deadline_s = time.monotonic() + SETUP_TIMEOUT_S

            def session_of(guild: int) -> Any:
                session = bot.sessions.get(guild)
                return session if isinstance(session, GuildSession) else None

            def realtime_of(guild: int) -> Any:
                session = session_of(guild)
                return None if session is None else session.conversation._session

            while not all(realtime_of(g) is not None and realtime_of(g)._ws is not None for g in guild_ids):
                if time.monotonic() > deadline_s:
                    raise RuntimeError("not every guild session reached its Realtime server")
                await asyncio.sleep(0.05)
            pipe.send("ready")
            _command, start_s = await loop.run_in_executor(None, pipe.recv)
            await asyncio.sleep(max(0.0, start_s - time.monotonic()))
            probes.clear()
            cpu_start_s, wall_start_s = time.process_time(), time.monotonic()
            await loop.run_in_executor(None, pipe.recv)  # "stop"
            cpu_s, wall_s, stop_s = time.process_time() - cpu_start_s, time.monotonic() - wall_start_s, time.monotonic()
            conversations = []
            for guild in guild_ids:
                session, realtime = session_of(guild), realtime_of(guild)
                receiver, connection = session.voice.receiver, session.voice._connection
                ssrc = SPEAKER_SSRC_BASE + guild - FIRST_GUILD
                conversations.append(
                    {
                        "guild": guild,
                        "arrivals": [(seq, t) for s, seq, t in probes.arrivals[id(receiver)] if s == ssrc],
                        "appends": probes.appends[id(realtime._ws)],
                        "deltas": probes.deltas[id(realtime._ws)],
                        "packets": probes.packets[id(connection)],
                        "reconnects": realtime.reconnects,
                        "voice_metrics": session.voice.metrics_snapshot(),
                    }
                )
            pipe.send({"cpu_s": cpu_s, "wall_s": wall_s, "stop_s": stop_s, "conversations": conversations})
            await bot.close()


def _bot_main(
    realtime_url: str, endpoints: list[str], first_guild: int, pipe: multiprocessing.connection.Connection
) -> None:
    try:
        asyncio.run(_bot(realtime_url, endpoints, first_guild, pipe))
    except BaseException as error:
        with contextlib.suppress(Exception):
            pipe.send(RuntimeError(f"the bot process failed: {type(error).__name__}: {error}"))
        raise


class _BotProcess:
    def __init__(self, realtime_url: str, endpoints: list[str], first_guild: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(
            target=_bot_main, args=(realtime_url, endpoints, first_guild, child), daemon=True
        )
        self.process.start()
        child.close()

    def receive(self, timeout_s: float) -> Any:
        if not self.pipe.poll(timeout_s):
            raise RuntimeError(f"a bot process did not report in {timeout_s:g} s")
        reply = self.pipe.recv()
        if isinstance(reply, Exception):
            raise reply
        return reply

    def end(self) -> None:
        self.process.join(30.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10.0)


# -- one run, one level ------------------------------------------------------------------------------------------------


def run_once(
    count: int, seconds: float, *, processes: int = 1, seed: int = 1, warm_up_s: float = WARM_UP_S
) -> dict[str, Any]:
    """One run: ``count`` conversations measured for ``seconds`` (after ``warm_up_s``) over ``processes`` bot
    processes, from fresh processes."""
    if count < 1 or not 1 <= processes <= count:
        raise ValueError(f"need 1 <= processes <= conversations, got {processes} for {count}")
    params = {
        "answer_ms": ANSWER_MS,
        "chunk_ms": 100,
        "pace": 2.0,
        "vad_silence_ms": VAD_SILENCE_MS,
        "model_delay_ms": MODEL_DELAY_MS,
    }
    bounds = [count * number // processes for number in range(processes + 1)]
    with ServerProcess("wire", params) as server, GatewayProcess() as gateway:
        endpoints: list[str] = gateway.call("setup", count, timeout_s=SETUP_TIMEOUT_S)
        bots = [
            _BotProcess(server.url, endpoints[bounds[n] : bounds[n + 1]], FIRST_GUILD + bounds[n])
            for n in range(processes)
        ]
        try:
            for bot in bots:
                if bot.receive(SETUP_TIMEOUT_S) != "ready":
                    raise RuntimeError("a bot process did not get ready")
            gateway.call("await_bot", timeout_s=SETUP_TIMEOUT_S)
            start_s = time.monotonic() + START_DELAY_S
            measured_from_s = start_s + warm_up_s
            for bot in bots:
                bot.pipe.send(("go", measured_from_s))
            talked: GatewayRecords = gateway.call(
                "go", start_s, warm_up_s + seconds, TURN_PERIOD_S, seed, timeout_s=warm_up_s + seconds + 120
            )
            for bot in bots:
                bot.pipe.send(("stop",))
            results = [bot.receive(60.0) for bot in bots]
        finally:
            for bot in bots:
                bot.end()
        records = server.stop()
    raw = [conversation for result in results for conversation in result["conversations"]]
    stop_s = min(result["stop_s"] for result in results)
    conversations, voiced_sent, voiced_lost = _conversations(raw, talked, records.wire_turns, measured_from_s, stop_s)
    figures = wire_stats.run_figures(
        conversations,
        cpu_s=sum(r["cpu_s"] for r in results),
        wall_s=max(r["wall_s"] for r in results),
    )
    figures.update(
        {
            "processes": processes,
            "bot_cores_used": round(figures["cpu_s"] / figures["wall_s"], 2) if figures["wall_s"] else 0.0,
            "voiced_datagrams_sent": voiced_sent,
            "voiced_datagrams_lost": voiced_lost,
            "warm_up_s": warm_up_s,
            "reconnects": sum(c["reconnects"] for c in raw),
            "dave_failed": sum(c["voice_metrics"].get("dave_failed", 0) for c in raw),
            "gateway": {
                "cpu_s": round(talked.cpu_s, 2),
                "cores_used": round(talked.cpu_s / talked.wall_s, 2) if talked.wall_s else 0.0,
                "late_p50_ms": round(percentile(talked.late_ms, 0.5), 2),
                "late_p99_ms": round(percentile(talked.late_ms, 0.99), 2),
                "late_max_ms": round(max(talked.late_ms, default=0.0), 2),
                "bot_packets_received": sum(talked.bot_packets),
                "audio_frames_alice_decrypted": sum(talked.heard_audio_frames),
                "undecryptable": sum(talked.undecryptable),
            },
            "realtime_server": {
                "cpu_s": round(records.cpu_s, 2),
                "connections": records.connections,
                "schema_problems": records.schema_problems,
                "script_errors": records.script_errors,
            },
        }
    )
    figures["held"] = wire_stats.holds(figures)
    return figures


def _conversations(
    raw: list[dict[str, Any]],
    talked: GatewayRecords,
    server_turns: list[dict[str, Any]],
    measured_from_s: float,
    stop_s: float,
) -> tuple[list[Conversation], int, int]:
    """Join the bot's, the gateway's and the server's records per conversation (server turns by item id), leaving out
    spurts and answers begun before ``measured_from_s``; also the voiced datagrams counted and how many were lost."""
    by_tag: dict[str, int] = {}
    for index, record in enumerate(raw):
        for _t, item in record["deltas"]:
            tag = _PEER_TAG.search(item)
            if tag:
                by_tag[tag[1]] = index
    turns_of: defaultdict[int, list[ServerTurn]] = defaultdict(list)
    for stamps in server_turns:
        if not measured_from_s <= stamps["first_delta_sent_s"] <= stop_s - LAST_ANSWER_MARGIN_S:
            continue  # answered in the warm-up, or too close to the end to be heard in the run
        found = _PEER_TAG.search(stamps["item_id"])
        turns_of[by_tag.get(found[1], -1) if found else -1].append(ServerTurn(**stamps))
    out = []
    counted = lost = 0
    for number, conversation in enumerate(raw):
        arrived = dict(conversation["arrivals"])
        spurts: defaultdict[int, list[tuple[float, float | None]]] = defaultdict(list)
        for sequence, spurt, voiced, sent_s in talked.sent[number]:
            if voiced:
                spurts[spurt].append((sent_s, arrived.get(sequence)))
        measured = [frames for _spurt, frames in sorted(spurts.items()) if frames[0][0] >= measured_from_s]
        counted += sum(len(frames) for frames in measured)
        lost += sum(read_s is None for frames in measured for _sent_s, read_s in frames)
        out.append(
            Conversation(
                turns=[[sent_s for sent_s, _read_s in frames] for frames in measured],
                socket_wait_ms=[
                    (read_s - sent_s) * 1000 for frames in measured for sent_s, read_s in frames if read_s is not None
                ],
                appends=conversation["appends"],
                deltas=conversation["deltas"],
                packets=conversation["packets"],
                server_turns=turns_of[number],
            )
        )
    if turns_of[-1]:  # answers no bot read a delta of: never heard
        out.append(Conversation([], [], [], [], turns_of[-1]))
    return out, counted, lost


def run_level(
    count: int, seconds: float, runs: int, *, processes: int = 1, warm_up_s: float = WARM_UP_S
) -> dict[str, Any]:
    """A level: ``runs`` independent runs; its summary (median run, spread, held only if every run held)."""
    results = [run_once(count, seconds, processes=processes, seed=run + 1, warm_up_s=warm_up_s) for run in range(runs)]
    return {
        "conversations": count,
        "processes": processes,
        "seconds_per_run": seconds,
        "runs": results,
        "summary": wire_stats.level_summary(results),
    }


def run(options: Options) -> dict[str, Any]:
    """Every level (``--load-levels``, ``--load-seconds``, ``--repeats`` runs per level, at least :data:`RUNS`;
    ``--load-processes``, default one bot process per core, the issue's whole-machine setup). ``--quick``: 2
    conversations, 2 runs of 6 s, one bot process (structure, not speed)."""
    if options.quick:
        levels, seconds, runs = options.load_levels or QUICK_LEVELS, options.load_seconds or QUICK_SECONDS, QUICK_RUNS
    else:
        levels = options.load_levels or LEVELS
        seconds = options.load_seconds or SECONDS_PER_RUN
        runs = max(RUNS, options.repeats)
    processes = options.load_processes or (1 if options.quick else max(1, os.cpu_count() or 1))
    warm_up_s = QUICK_WARM_UP_S if options.quick else WARM_UP_S
    rows = [run_level(count, seconds, runs, processes=min(processes, count), warm_up_s=warm_up_s) for count in levels]
    return {
        "seconds_per_run": seconds,
        "warm_up_s": warm_up_s,
        "runs_per_level": runs,
        "processes": processes,
        "levels": rows,
    }


# -- the report --------------------------------------------------------------------------------------------------------


def _verdict(check: dict[str, Any]) -> str:
    sign = "+" if check["margin"] >= 0 else ""
    return f"{'pass' if check['passed'] else '**FAIL**'} ({sign}{check['margin']:g})"


def _range(spread: dict[str, dict[str, float]], key: str) -> str:
    return f"{spread[key]['min']:g}-{spread[key]['max']:g}"


def iter_markdown(result: dict[str, Any]) -> Iterator[str]:
    yield "## 3. Load at the wire: the whole bot, socket to socket"
    yield ""
    yield (
        f"Each level: {result['runs_per_level']} runs of {result['seconds_per_run']:g} s from fresh processes "
        f"(measured after {result.get('warm_up_s', 0):g} s of talk that settles the just-joined guilds), "
        f"{result['processes']} bot process(es) sharing the conversations (the target is for the whole 2-core "
        "machine, one bot process per core). A conversation is busy as the load benchmark has always defined it: "
        f"its speaker talks 0.72 s every {TURN_PERIOD_S:g} s and every turn is answered with {ANSWER_MS} ms of "
        f"audio, streamed at twice real time after a {MODEL_DELAY_MS} ms stand-in model delay. Every call uses DAVE "
        "(a real MLS group on the loopback voice gateway, which asks for Discord's voice heartbeat, every "
        f"{VOICE_HEARTBEAT_INTERVAL_MS / 1000:g} s). Inbound = a speaker's datagram in the bot's socket (the "
        "gateway's sendto returned; loopback delivers at once) -> the append carrying the start of its audio "
        "returned from the Realtime socket's send; socket wait p99 = how long datagrams sat in the socket before "
        "discord.py's reader thread handed them to the bot's receiver (part of inbound). Outbound = the answer's "
        "first audio delta read from the Realtime socket -> the answer's first RTP packet handed to the UDP socket. "
        "First audible adds the lead-in silence. The bot's share of a turn = "
        "last voiced datagram in -> first audible packet out, minus the server's VAD wait and the model delay. "
        "Underruns = every gap over 25 ms between consecutive packets of an answer; never heard = answers the "
        "server sent of which the bot sent no audible packet (answers begun less than "
        f"{LAST_ANSWER_MARGIN_S:g} s before the end of a run are not counted). CPU = the bot processes' CPU s "
        "per conversation per wall s. Figures are the median run's (by inbound p99); ranges are min-max over the runs."
    )
    if result["runs_per_level"] < RUNS or result["seconds_per_run"] < SECONDS_PER_RUN:
        yield ""
        yield (
            f"**Below issue 16's minimum of {RUNS} runs of {SECONDS_PER_RUN:g} s per level: a check of the harness, "
            "not a record of capacity.**"
        )
    yield ""
    yield (
        "| conversations | runs held | inbound p50 / p99 | socket wait p99 | outbound p50 / p99 | first audible p50 "
        "| share p50 / p99 | underruns | never heard / sent | CPU ms / conv-s | bot cores | gateway late p99 "
        "| gateway cores | verdict |"
    )
    yield "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    for level in result["levels"]:
        summary = level["summary"]
        run = level["runs"][summary["median_run"]]
        rng = functools.partial(_range, summary["spread"])

        yield (
            f"| {level['conversations']} | {summary['runs_held']} / {summary['runs']} "
            f"| {run['inbound_p50_ms']} / {run['inbound_p99_ms']} ({rng('inbound_p99_ms')}) "
            f"| {run['socket_wait']['p99_ms']} "
            f"| {run['outbound_p50_ms']} / {run['outbound_p99_ms']} ({rng('outbound_p99_ms')}) "
            f"| {run['first_audible']['p50_ms']} | {run['share']['p50_ms']} / {run['share']['p99_ms']} "
            f"| {run['underruns']} ({rng('underruns')}) | {run['answers_unheard']} / {run['answers_sent']} "
            f"| {run['cpu_ms_per_conversation_s']} ({rng('cpu_ms_per_conversation_s')}) | {run['bot_cores_used']} "
            f"| {run['gateway']['late_p99_ms']} | {run['gateway']['cores_used']} "
            f"| {'**held**' if summary['held'] else 'not held'} |"
        )
    yield ""
    yield (
        "Targets per level (issue 16), judged on the worst run; margin = limit - value (negative: missed by that much):"
    )
    yield ""
    names = [name for name, _key, _limit in wire_stats.TARGETS]
    yield "| conversations | " + " | ".join(f"{name} (<= {limit:g})" for name, _k, limit in wire_stats.TARGETS) + " |"
    yield "| ---: |" + " --- |" * len(names)
    for level in result["levels"]:
        checks = level["summary"]["worst_checks"]
        yield f"| {level['conversations']} | " + " | ".join(_verdict(c) for c in checks) + " |"
    yield ""
    runs = [run for level in result["levels"] for run in level["runs"]]
    yield (
        f"Across all runs: {sum(r['reconnects'] for r in runs)} Realtime reconnects, "
        f"{sum(r['voiced_datagrams_lost'] for r in runs)} voiced datagrams lost on loopback, "
        f"{sum(r['dave_failed'] for r in runs)} DAVE decrypt failures in the bot, "
        f"{sum(r['gateway']['undecryptable'] for r in runs)} bot packets alice could not decrypt, "
        f"{sum(len(r['realtime_server']['schema_problems']) for r in runs)} schema problems and "
        f"{sum(len(r['realtime_server']['script_errors']) for r in runs)} server script errors. The voice gateway's "
        "lateness (its datagram's sendto return - when it was due) is the harness', not the bot's: inbound starts "
        "at the bot's socket, so it is not in the bot's figures, but the gateway and the Realtime server share the "
        "machine's cores with the bot (gateway cores above; the server's CPU is in results.json). The median run's "
        f"worst gateway lateness was {statistics.median(r['gateway']['late_max_ms'] for r in runs) if runs else 0:g} "
        "ms."
    )
