"""The figures of the wire benchmark (:mod:`bench.wire`), computed from raw timestamps. Pure: no I/O, no clocks.

Every timestamp is ``time.monotonic()`` seconds (``CLOCK_MONOTONIC``, one clock for every process on the machine), so
the bot's, the voice gateway's and the Realtime server's stamps can be subtracted. Where each comes from:

- ``turns``: a speaker's voiced datagrams in the bot's socket: when the voice gateway's ``sendto`` returned (loopback
  delivers at once), per talk spurt, every voiced datagram in RTP order (one lost on the way keeps its place: the
  receiver conceals it, so the stream positions of the frames after it hold);
- ``socket_wait_ms``: per datagram that arrived, ``sendto`` returned -> discord.py's socket reader handed it to the
  bot's receiver (the first line of Python after its ``socket.recv``: time spent in the socket buffer waiting for the
  reader thread), paired by RTP sequence; a fraction of a millisecond below zero when the reader, idle and waiting,
  takes the datagram before the gateway's process, descheduled right after its ``sendto``, stamps the return;
- ``appends``: an ``input_audio_buffer.append`` returned from ``send`` on the Realtime WebSocket, with the bytes of
  audio it carried and how many of them lead with exact zeros (the room's priming silence);
- ``deltas``: the first ``response.output_audio.delta`` of an answer read from the Realtime WebSocket, by item id;
- ``packets``: an RTP packet of the bot's handed to the UDP socket's ``sendall``, and whether it held audio or the
  Opus silence frame (the lead-in and the trailing silence);
- the Realtime server's per-turn stamps (:class:`ServerTurn`).

Pairing rules (each documented where it is applied) are tested on synthetic timelines in ``tests/test_bench_wire.py``.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.timing import percentile

#: 20 ms of 24 kHz mono pcm16: one speaker frame's audio in the append stream.
FRAME_BYTES_24K = 960
#: A gap between two consecutive packets of an answer longer than this is an underrun (the sender's clock is 20 ms).
UNDERRUN_GAP_MS = 25.0
#: Issue 16's targets, per level, for the whole machine. (name, figure key, limit); every limit is a maximum.
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("underruns", "underruns", 0),
    ("answers never heard", "answers_unheard", 0),
    ("inbound p50 ms", "inbound_p50_ms", 20.0),
    ("inbound p99 ms", "inbound_p99_ms", 35.0),
    ("outbound p50 ms", "outbound_p50_ms", 20.0),
    ("outbound p99 ms", "outbound_p99_ms", 35.0),
    ("CPU ms per busy conversation-s", "cpu_ms_per_conversation_s", 6.0),
    ("bot's share of a turn p50 ms", "share_p50_ms", 40.0),
)


@dataclass(frozen=True, slots=True)
class Append:
    """One ``input_audio_buffer.append`` as written: when ``send`` returned, its audio bytes, its leading zero bytes."""

    written_s: float
    audio_bytes: int
    leading_zero_bytes: int


@dataclass(frozen=True, slots=True)
class Packet:
    """One RTP packet of the bot's, when it was handed to ``sendall``; ``audible``: not the Opus silence frame."""

    sent_s: float
    audible: bool


@dataclass(frozen=True, slots=True)
class ServerTurn:
    """What the Realtime server stamped for one answered turn (all monotonic s).

    ``last_voice_in_s``: the append holding the end of the user's speech (the VAD's ``audio_end_ms``) arrived (its
    wait to ``speech_stopped`` is reported as the server's VAD wait; the share does not depend on where the VAD put
    the end);
    ``stopped_sent_s``: ``speech_stopped`` sent (the VAD waited its silence in between);
    ``create_in_s``: the bot's ``response.create`` arrived; ``first_delta_sent_s``: the answer's first audio delta
    sent (the stand-in model's delay in between).
    """

    item_id: str
    last_voice_in_s: float
    stopped_sent_s: float
    create_in_s: float
    first_delta_sent_s: float


def inbound_ms(turns: Sequence[Sequence[float]], appends: Sequence[Append]) -> tuple[list[float], int]:
    """Per voiced datagram: its arrival at the bot's socket -> the append carrying the start of its audio written.

    ``turns``: per talk spurt, the arrival times of its voiced datagrams in RTP order (one speaker per conversation).
    A spurt's audio is looked for in the appends written from its first arrival until the next spurt's first arrival.
    Its first non-zero byte there is the start of its first frame (the room primes with exact silence first); frame
    ``k`` starts ``k`` × 20 ms later in the stream. Returns (latencies, frames whose audio was never appended).
    """
    per_spurt = inbound_by_spurt(turns, appends)
    latencies = [value for spurt in per_spurt for value in spurt]
    return latencies, sum(len(arrivals) for arrivals in turns) - len(latencies)


def inbound_by_spurt(turns: Sequence[Sequence[float]], appends: Sequence[Append]) -> list[list[float]]:
    """:func:`inbound_ms` per spurt, in order: a spurt's list stops at its first frame never appended."""
    out: list[list[float]] = []
    ordered = sorted(appends, key=lambda a: a.written_s)
    for number, arrivals in enumerate(turns):
        latencies: list[float] = []
        out.append(latencies)
        if not arrivals:
            continue
        begin_s = arrivals[0]
        end_s = turns[number + 1][0] if number + 1 < len(turns) and turns[number + 1] else float("inf")
        spurt = [a for a in ordered if begin_s <= a.written_s < end_s]
        start = _first_audio_byte(spurt)
        if start is None:
            continue
        ends, position = [], 0
        for append in spurt:
            position += append.audio_bytes
            ends.append(position)
        index = 0
        for k, arrived_s in enumerate(arrivals):
            byte = start + k * FRAME_BYTES_24K
            while index < len(ends) and ends[index] <= byte:
                index += 1
            if index == len(ends):
                break
            latencies.append((spurt[index].written_s - arrived_s) * 1000)
    return out


def _first_audio_byte(spurt: Sequence[Append]) -> int | None:
    position = 0
    for append in spurt:
        if append.leading_zero_bytes < append.audio_bytes:
            return position + append.leading_zero_bytes - append.leading_zero_bytes % 2
        position += append.audio_bytes
    return None


def answers(deltas: Sequence[tuple[float, str]], packets: Sequence[Packet]) -> dict[str, list[Packet]]:
    """The bot's packets of each answer: those sent from its first delta read until the next answer's."""
    ordered = sorted(deltas)
    out: dict[str, list[Packet]] = {item: [] for _t, item in ordered}
    index = -1
    for packet in sorted(packets, key=lambda p: p.sent_s):
        while index + 1 < len(ordered) and ordered[index + 1][0] <= packet.sent_s:
            index += 1
        if index >= 0:
            out[ordered[index][1]].append(packet)
    return out


def underrun_gaps_ms(packets: Sequence[Packet]) -> list[float]:
    """Every gap over :data:`UNDERRUN_GAP_MS` between consecutive packets of one answer, from its first packet to its
    last audible one (whatever the cause: an empty source, a late sender, a restarted clock)."""
    audible = [i for i, p in enumerate(packets) if p.audible]
    if not audible:
        return []
    span = packets[: audible[-1] + 1]
    gaps = ((b.sent_s - a.sent_s) * 1000 for a, b in itertools.pairwise(span))
    return [gap for gap in gaps if gap > UNDERRUN_GAP_MS]


@dataclass
class Conversation:
    """One conversation's raw stamps from one run (see the module docstring)."""

    turns: list[list[float]]
    appends: list[Append]
    deltas: list[tuple[float, str]]
    packets: list[Packet]
    server_turns: list[ServerTurn]
    socket_wait_ms: list[float] | None = None


def _lat(values: Sequence[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.5), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(max(values, default=0.0), 2),
    }


def run_figures(conversations: Sequence[Conversation], *, cpu_s: float, wall_s: float) -> dict[str, Any]:
    """One run's figures: latencies at the wire, the bot's share of a turn, underruns, CPU per conversation-second.

    An answer is "sent" once the server sent its first delta; it is "heard" when the bot sent at least one audible
    packet of it. The bot's share of a turn = (first audible packet out - last voiced datagram in) - the server's
    VAD wait - the stand-in model's delay (response.create in -> first delta sent). The VAD wait is taken from the
    moment the last voiced datagram's audio was written to the Realtime socket (its inbound pairing) to
    ``speech_stopped`` sent, so the share is the sum of the bot's own parts: that datagram's inbound latency, the
    bot's reaction (``speech_stopped`` sent -> ``response.create`` in) and the answer's way out (first delta sent ->
    first audible packet). The turn is the last spurt that began before ``speech_stopped``. A turn whose answer was
    not heard, or whose last frame was never appended, has no share (the first counts as unheard).
    """
    inbound: list[float] = []
    outbound: list[float] = []
    first_audible: list[float] = []
    share: list[float] = []
    vad_wait: list[float] = []
    socket_wait: list[float] = []
    gaps: list[float] = []
    missing = sent = heard = 0
    for conversation in conversations:
        per_spurt = inbound_by_spurt(conversation.turns, conversation.appends)
        socket_wait += conversation.socket_wait_ms or []
        inbound += [value for spurt in per_spurt for value in spurt]
        missing += sum(len(a) for a in conversation.turns) - sum(len(spurt) for spurt in per_spurt)
        by_item = answers(conversation.deltas, conversation.packets)
        read_s = {item: t for t, item in conversation.deltas}
        for turn in conversation.server_turns:
            sent += 1
            vad_wait.append((turn.stopped_sent_s - turn.last_voice_in_s) * 1000)
            packets = by_item.get(turn.item_id, [])
            audible = next((p for p in packets if p.audible), None)
            if audible is None:
                continue
            heard += 1
            outbound.append((packets[0].sent_s - read_s[turn.item_id]) * 1000)
            first_audible.append((audible.sent_s - read_s[turn.item_id]) * 1000)
            gaps += underrun_gaps_ms(packets)
            spurt = _spurt_of(conversation.turns, turn.stopped_sent_s)
            if spurt is not None and len(per_spurt[spurt]) == len(conversation.turns[spurt]):
                last_in_s = conversation.turns[spurt][-1]
                last_appended_s = last_in_s + per_spurt[spurt][-1] / 1000
                vad_wait_s = turn.stopped_sent_s - last_appended_s
                model_s = turn.first_delta_sent_s - turn.create_in_s
                share.append((audible.sent_s - last_in_s - vad_wait_s - model_s) * 1000)
    count = len(conversations)
    inbound_lat, outbound_lat, share_lat = _lat(inbound), _lat(outbound), _lat(share)
    return {
        "conversations": count,
        "wall_s": round(wall_s, 2),
        "cpu_s": round(cpu_s, 2),
        "cpu_ms_per_conversation_s": round(1000 * cpu_s / (count * wall_s), 3) if count and wall_s > 0 else 0.0,
        "inbound": inbound_lat,
        "inbound_p50_ms": inbound_lat["p50_ms"],
        "inbound_p99_ms": inbound_lat["p99_ms"],
        "frames_never_appended": missing,
        "socket_wait": _lat(socket_wait),
        "outbound": outbound_lat,
        "outbound_p50_ms": outbound_lat["p50_ms"],
        "outbound_p99_ms": outbound_lat["p99_ms"],
        "first_audible": _lat(first_audible),
        "share": share_lat,
        "share_p50_ms": share_lat["p50_ms"],
        "server_vad_wait": _lat(vad_wait),
        "answers_sent": sent,
        "answers_heard": heard,
        "answers_unheard": sent - heard,
        "underruns": len(gaps),
        "underrun_max_gap_ms": round(max(gaps, default=0.0), 1),
    }


def _spurt_of(turns: Sequence[Sequence[float]], stopped_s: float) -> int | None:
    """The spurt a ``speech_stopped`` ended: the last one that began before it."""
    begun = [number for number, arrivals in enumerate(turns) if arrivals and arrivals[0] < stopped_s]
    return max(begun, default=None)


def checks(figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target against one run's (or a summary's) figures: value, limit, passed, margin (limit - value)."""
    out = []
    for name, key, limit in TARGETS:
        value = float(figures[key])
        out.append(
            {
                "target": name,
                "value": value,
                "limit": limit,
                "passed": value <= limit,
                "margin": round(limit - value, 3),
            }
        )
    return out


def holds(figures: Mapping[str, Any]) -> bool:
    """Whether one run met every target (and measured something: no inbound frames is no evidence)."""
    return figures["inbound"]["count"] > 0 and figures["answers_sent"] > 0 and all(c["passed"] for c in checks(figures))


def level_summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A level over its runs: each target's median and spread (min-max over runs), the median run (by inbound p99,
    then outbound p99), and ``held`` only if every run held."""
    if not runs:
        raise ValueError("a level needs at least one run")
    figures: dict[str, Any] = {}
    for _name, key, _limit in TARGETS:
        values = [float(run[key]) for run in runs]
        figures[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    ranked = sorted(range(len(runs)), key=lambda i: (runs[i]["inbound_p99_ms"], runs[i]["outbound_p99_ms"]))
    median_run = ranked[(len(ranked) - 1) // 2]
    per_run = [holds(run) for run in runs]
    worst = {key: figures[key]["max"] for _n, key, _l in TARGETS}
    return {
        "runs": len(runs),
        "median_run": median_run,
        "spread": figures,
        "runs_held": sum(per_run),
        "held": all(per_run),
        "worst_checks": checks(worst),
    }
