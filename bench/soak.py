"""Soak: one guild, three scripted speakers, a long session through the whole bot. Memory, asyncio tasks, threads
and file descriptors must stay flat, and every turn must be answered.

What runs: the real ``VoiceBot`` with its cogs and session factory (:mod:`tests.whole_bot`), connected to the
loopback voice gateway (real WebSocket, UDP, libopus, transport crypto) and the local Realtime server (real
WebSocket, schema-checked events, a small energy VAD). Alice, bob and carol take turns. A turn is the speech
fixture (real speech, libopus-encoded once) said :data:`PHRASES_PER_TURN` times in one talk spurt, then the five
Opus silence frames Discord clients end a spurt with. The Realtime script hears the turn with its VAD, receives the
speaker label, sends the transcript and, when the bot asks, answers with a short tone; the speakers wait until the
answer has played before the next turn.

Faster than real time: the speakers send a packet every 20 ms / ``speed`` and the bot's room keeps time as fast (its
frame period, :attr:`~bot.voice.client.ReceivingVoiceClient.room_tick_s`, the one knob: the mixer's deadlines and
silence tail, and the room clock's checks); the rest is the bot as it runs, and the answers play at real pace on the
bot's sender thread.

It runs in a fresh process, so the figures are the bot's and its harness'. After each turn it samples RSS,
Python's allocated memory blocks, asyncio tasks, threads, open file descriptors, and the bot's bounded state
(timeline segments, receiver decoders, playback queue). The harness' own records (posted messages, received
events, the bot's packets) are cleared every turn so they do not count as growth. Growth is judged from the end of
a warm-up (the first :data:`WARM_UP_FRACTION` of the audio) to the end.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import multiprocessing.connection
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.timing import Options
from bot.audio.formats import DISCORD_FRAME_BYTES, FRAME_MS
from bot.voice.client import ReceivingVoiceClient
from bot.voice.playback import PlaybackSource
from tests.realtime.server import Peer, tone_pcm16
from tests.voice.packets import OPUS_SILENCE, Speaker, speech_48k_stereo
from tests.whole_bot import ALICE, BOB, CAROL, LOUNGE_ID, Room, eventually, room

#: Seconds of speech the default run sends through the bot (the issue asks for at least 30 minutes).
AUDIO_S = 1800.0
QUICK_AUDIO_S = 40.0
#: How much faster than real time the speakers talk and the room keeps time.
SPEED = 10.0
#: The speech fixture said this many times per turn (about 10 s of speech).
PHRASES_PER_TURN = 4
#: The fixture ends in 400 ms of quiet; trimmed so phrases of one turn run together without a pause the VAD would
#: take for the end of the turn.
TRAILING_FRAMES_TRIMMED = 16
SILENCE_FRAMES = 5
#: The server VAD's silence (and the guild's setting, so the room's silence tail outlasts it), in audio ms. Long, so
#: that a hiccup of the machine (the loop or the socket thread held up for 200 ms of wall time at 10x, 2 s of audio)
#: does not end a turn in the middle.
VAD_SILENCE_MS = 2000
#: How long a sample waits for the turn's short-lived tasks to finish (wall seconds).
TASK_SETTLE_S = 2.0
TASK_SETTLE_POLL_S = 0.02
ANSWER_MS = 300
WARM_UP_FRACTION = 0.2
#: Growth allowed from the end of the warm-up to the end. The unbounded speaker timeline alone grew about 23 MB in
#: 30 minutes of speech.
MAX_RSS_GROWTH_MB = 6.0
MAX_BLOCK_GROWTH_FRACTION = 0.02
SPEAKERS = (ALICE, BOB, CAROL)
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol"}
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _PAGE_BYTES / 1e6


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class _Model:
    """The Realtime side: hears each turn, checks its label, answers it."""

    def __init__(self) -> None:
        self.turns_heard = 0
        self.answers_sent = 0
        self.labels: list[str] = []

    async def __call__(self, peer: Peer) -> None:
        await peer.configured.wait()
        while True:
            peer.audio.clear()
            peer.received.clear()
            await peer.wait_for_user_turn(silence_ms=VAD_SILENCE_MS, timeout_s=120.0)
            self.turns_heard += 1
            label = await peer.expect("conversation.item.create", timeout_s=30.0)
            self.labels.append(str(label["item"].get("content", "")))
            number = self.turns_heard
            await peer.user_transcript(peer.last_user_item_id, f"turn {number}")
            await peer.expect("response.create", timeout_s=30.0)
            await peer.answer_with_audio(tone_pcm16(ANSWER_MS, 440.0), f"answer {number}")
            self.answers_sent += 1


def _turn_frames() -> list[bytes]:
    """One turn's Opus frames: the trimmed speech fixture, :data:`PHRASES_PER_TURN` times."""
    speech = speech_48k_stereo()
    speech = speech[: len(speech) - len(speech) % DISCORD_FRAME_BYTES - TRAILING_FRAMES_TRIMMED * DISCORD_FRAME_BYTES]
    return Speaker(ssrc=1).opus_frames(speech * PHRASES_PER_TURN)


async def _say(lounge: Room, user_id: int, opus_frames: list[bytes], speed: float) -> None:
    """``user_id`` talks: each Opus frame encrypted and sent as Discord does, one per 20 ms / ``speed``."""
    speaker = lounge.speakers.get(user_id)
    if speaker is None:
        speaker = lounge.speakers[user_id] = Speaker(ssrc=4000 + user_id)
        await lounge.voice_server.speaking(user_id, speaker.ssrc)
        await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    period_s = FRAME_MS / 1000 / speed
    start = loop.time()
    for index, opus in enumerate([*opus_frames, *[OPUS_SILENCE] * SILENCE_FRAMES]):
        lounge.voice_server.send_voice(speaker.packet(opus)[1])
        await asyncio.sleep(max(0.0, start + (index + 1) * period_s - loop.time()))


async def _settle_tasks(baseline: int | None) -> None:
    """Give the turn's short-lived tasks (a store write, a post) up to :data:`TASK_SETTLE_S` to finish before the
    sample, so a task caught in flight on a busy machine is not taken for a leak. A leaked task never finishes, so
    it still shows in the sample."""
    if baseline is None:
        return
    for _ in range(round(TASK_SETTLE_S / TASK_SETTLE_POLL_S)):
        if len(asyncio.all_tasks()) <= baseline:
            return
        await asyncio.sleep(TASK_SETTLE_POLL_S)


def _task_names() -> Counter[str]:
    """What each live task runs, counted (so a failed check can say which tasks grew)."""
    return Counter(getattr(task.get_coro(), "__qualname__", "?") for task in asyncio.all_tasks())


def _sample(lounge: Room, audio_s: float, first_tasks: Counter[str] | None) -> dict[str, Any]:
    """The figures after a turn; ``tasks_beyond_first`` names the tasks alive now that were not at the first
    sample."""
    voice, playback = lounge.session.voice, lounge.session.playback
    assert isinstance(voice, ReceivingVoiceClient) and isinstance(playback, PlaybackSource)
    return {
        "audio_s": round(audio_s, 1),
        "rss_mb": round(_rss_mb(), 2),
        "blocks": sys.getallocatedblocks(),
        "tasks": len(asyncio.all_tasks()),
        "tasks_beyond_first": sorted((_task_names() - (first_tasks or Counter())).elements()),
        "threads": threading.active_count(),
        "fds": _open_fds(),
        "timeline_segments": len(voice.room.timeline),
        "receiver_streams": voice.receiver.streams_held,
        "playback_buffered_ms": round(playback.buffered_ms, 1),
    }


async def _soak(audio_s: float, speed: float) -> dict[str, Any]:
    ReceivingVoiceClient.room_tick_s = FRAME_MS / 1000 / speed
    frames = _turn_frames()
    turn_audio_s = (len(frames) + SILENCE_FRAMES) * FRAME_MS / 1000
    turns = max(3, math.ceil(audio_s / turn_audio_s))
    model = _Model()
    samples: list[dict[str, Any]] = []
    first_tasks: Counter[str] | None = None
    answered = 0
    started = time.monotonic()
    cpu_started = time.process_time()
    with tempfile.TemporaryDirectory(prefix="soak-") as data_dir:
        async with room(Path(data_dir), model, settings={"transcripts": True, "silence_ms": VAD_SILENCE_MS}) as lounge:
            lounge.gateway_voice_state(BOB, LOUNGE_ID)  # alice and carol are in the lounge; bob joins them
            await lounge.join(ALICE)
            await eventually(lambda: bool(lounge.realtime.peers) and lounge.realtime.peers[0].configured.is_set())
            session = lounge.session
            for number in range(1, turns + 1):
                user_id = SPEAKERS[(number - 1) % len(SPEAKERS)]
                await _say(lounge, user_id, frames, speed)
                answer = f"**Aiko:** answer {number}"
                await eventually(lambda answer=answer: answer in lounge.posts(), 60.0)  # type: ignore[misc]
                await eventually(lambda: not session.playback.is_playing, 60.0)
                await _settle_tasks(samples[0]["tasks"] if samples else None)
                answered += 1
                lounge.bot.posted.clear()
                lounge.voice_server.voice_datagrams.clear()
                lounge.voice_server.received_json.clear()
                lounge.voice_server.heartbeat_acks.clear()
                samples.append(_sample(lounge, number * turn_audio_s, first_tasks))
                first_tasks = first_tasks if first_tasks is not None else _task_names()
            labels_right = sum(
                NAMES[SPEAKERS[index % len(SPEAKERS)]] in label for index, label in enumerate(model.labels)
            )
            voice = session.voice
            assert isinstance(voice, ReceivingVoiceClient)
            metrics = voice.metrics_snapshot()
    return {
        "audio_s": round(turns * turn_audio_s, 1),
        "speed": speed,
        "turns": turns,
        "turns_heard": model.turns_heard,
        "turns_answered": answered,
        "labels_right": labels_right,
        "wall_s": round(time.monotonic() - started, 1),
        "cpu_s": round(time.process_time() - cpu_started, 1),
        "samples": samples,
        "voice_metrics": dict(sorted(metrics.items())),
    }


def _child(audio_s: float, speed: float, pipe: multiprocessing.connection.Connection) -> None:
    try:
        pipe.send(asyncio.run(_soak(audio_s, speed)))
    except BaseException as error:
        pipe.send({"error": f"{type(error).__name__}: {error}"})
        raise


def checks(result: dict[str, Any]) -> dict[str, bool]:
    """Each claim of the soak, judged from the end of the warm-up to the end."""
    samples = result["samples"]
    warm = next(s for s in samples if s["audio_s"] >= WARM_UP_FRACTION * result["audio_s"])
    end = samples[-1]
    return {
        "every turn answered": result["turns_answered"] == result["turns_heard"] == result["turns"],
        f"RSS grew under {MAX_RSS_GROWTH_MB:g} MB": end["rss_mb"] - warm["rss_mb"] < MAX_RSS_GROWTH_MB,
        f"Python memory blocks grew under {MAX_BLOCK_GROWTH_FRACTION:.0%}": end["blocks"]
        <= warm["blocks"] * (1 + MAX_BLOCK_GROWTH_FRACTION),
        "no more asyncio tasks": max(s["tasks"] for s in samples[samples.index(warm) :]) <= warm["tasks"],
        "no more threads": max(s["threads"] for s in samples[samples.index(warm) :]) <= warm["threads"],
        "no more file descriptors": max(s["fds"] for s in samples[samples.index(warm) :]) <= warm["fds"],
        "one decoder per speaker": end["receiver_streams"] == len(SPEAKERS),
    }


def run(options: Options, *, audio_s: float | None = None, speed: float = SPEED) -> dict[str, Any]:
    """The soak in a fresh process: ``audio_s`` of speech (``--quick``: 40 s), ``speed`` times real time."""
    seconds = audio_s if audio_s is not None else (QUICK_AUDIO_S if options.quick else AUDIO_S)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_child, args=(seconds, speed, child), daemon=True)
    process.start()
    child.close()
    try:
        if not parent.poll(60.0 + 3 * seconds):
            raise RuntimeError("the soak process did not report")
        try:
            result: dict[str, Any] = parent.recv()
        except EOFError:
            raise RuntimeError(f"the soak process died (exit code {process.exitcode})") from None
    finally:
        process.join(30.0)
        if process.is_alive():
            process.terminate()
            process.join(10.0)
    if "error" in result:
        raise RuntimeError(f"the soak failed: {result['error']}")
    result["checks"] = checks(result)
    return result


def iter_markdown(result: dict[str, Any]) -> Iterator[str]:
    samples = result["samples"]
    yield "## 6. Soak: one guild, three speakers, a long session"
    yield ""
    yield (
        f"{result['audio_s'] / 60:.1f} minutes of speech in {result['turns']} turns by three speakers through the "
        f"whole bot (loopback voice gateway, local Realtime server), at {result['speed']:g}x real time: "
        f"{result['wall_s']:.0f} s wall, {result['cpu_s']:.0f} s CPU. Turns heard by the server "
        f"{result['turns_heard']}, answered {result['turns_answered']}, labelled with the right speaker "
        f"{result['labels_right']}."
    )
    yield ""
    yield "| check | result |"
    yield "| --- | --- |"
    for name, passed in result["checks"].items():
        yield f"| {name} | {'yes' if passed else '**no**'} |"
    yield ""
    yield "| speech (min) | RSS (MB) | Python blocks | tasks | threads | fds | timeline segments | decoders |"
    yield "| --- | --- | --- | --- | --- | --- | --- | --- |"
    step = max(1, len(samples) // 10)
    for sample in [*samples[::step], *([samples[-1]] if (len(samples) - 1) % step else [])]:
        yield (
            f"| {sample['audio_s'] / 60:.1f} | {sample['rss_mb']:.1f} | {sample['blocks']:,} | {sample['tasks']} | "
            f"{sample['threads']} | {sample['fds']} | {sample['timeline_segments']} | {sample['receiver_streams']} |"
        )
