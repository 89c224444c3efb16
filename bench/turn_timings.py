"""Where a spoken turn's time goes, through the whole bot: the four timestamps of issue #7 per turn.

The real bot (cogs, session factory, guild session) in a room built by :mod:`tests.whole_bot`: a user speaks real Opus
over the loopback voice gateway; the local Realtime server's VAD ends the turn, the "model" answers after a fixed
think time, and the answer plays back through the bot's playback source. The guild session's own
:class:`~bot.room.turn_timing.TurnTimings` records, per turn: last voiced inbound frame -> ``speech_stopped`` -> first
answer audio delta -> first non-silent frame handed to Discord. The think time is the stand-in model's, so
``speech_stopped -> first answer audio`` measures it plus our path; the other segments are the bot's and the VAD's.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.timing import Options
from bot.room.turn_timing import SEGMENTS
from tests.realtime.server import Peer, idle, tone_pcm16
from tests.whole_bot import ALICE, eventually, room, tone_48k_stereo

MODEL_THINK_MS = 300
ANSWER_MS = 600
TURNS = 12
QUICK_TURNS = 2
SPEECH_S = 0.8


def _script(turns: int) -> Any:
    async def model(peer: Peer) -> None:
        await peer.configured.wait()
        for n in range(turns):
            peer.audio.clear()
            await peer.wait_for_user_turn()
            await peer.expect("conversation.item.create", timeout_s=10)  # the speaker label
            await peer.user_transcript(peer.last_user_item_id, f"question {n}")
            await peer.expect("response.create", timeout_s=10)
            await asyncio.sleep(MODEL_THINK_MS / 1000)
            response_id = await peer.start_response()
            await peer.stream_audio(response_id, tone_pcm16(ANSWER_MS, 440.0), f"answer {n}")
            await peer.finish_response(response_id)
        await idle(peer)

    return model


async def _measure(turns: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        async with room(Path(data_dir), _script(turns)) as lounge:
            await lounge.join(ALICE)
            session = lounge.session
            for n in range(turns):
                await lounge.speak(ALICE, tone_48k_stereo(300.0, SPEECH_S))

                def answering(turn: int = n) -> bool:
                    return session.figures.answered_turns > turn and session.playback.is_playing

                await eventually(answering)
                await eventually(lambda: not session.playback.is_playing)
                await asyncio.sleep(0.3)
            summary = session.turn_timings.summary()
    return {
        "turns": turns,
        "model_think_ms": MODEL_THINK_MS,
        "segments": {
            name: {"label": SEGMENTS[name], "count": p.count, "p50_ms": p.p50_ms, "p95_ms": p.p95_ms}
            for name, p in summary.items()
        },
    }


def run(options: Options) -> dict[str, Any]:
    return asyncio.run(_measure(QUICK_TURNS if options.quick else TURNS))


def iter_markdown(result: dict[str, Any]) -> Iterator[str]:
    yield "## 5. A spoken turn through the whole bot"
    yield ""
    yield (
        f"{result['turns']} turns of {SPEECH_S} s speech by one user, through the real bot on the loopback voice "
        f"gateway and the local Realtime server (server VAD: 500 ms of silence ends a turn; the stand-in model "
        f"thinks {result['model_think_ms']} ms, then answers with {ANSWER_MS} ms of audio). Recorded by the guild "
        "session itself, as `/voice status` shows them. `first answer audio -> played` includes the playback "
        "source's 60 ms start-up buffer and 200 ms lead silence (so Discord does not clip the first word)."
    )
    yield ""
    yield "| segment | turns | p50 ms | p95 ms |"
    yield "| --- | ---: | ---: | ---: |"
    for segment in result["segments"].values():
        yield f"| {segment['label']} | {segment['count']} | {segment['p50_ms']:.0f} | {segment['p95_ms']:.0f} |"
