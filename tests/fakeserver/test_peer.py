"""The local server's peer over a real WebSocket: its VAD keeps stream times while it drops long quiet."""

from __future__ import annotations

import asyncio
import base64
import json

from websockets.asyncio.client import connect

from bot.fakeserver.peer import BYTES_PER_MS, QUIET_KEPT_MS, Peer, tone_pcm16
from bot.fakeserver.server import RealtimeServer
from tests.realtime.server import UNIT_S


async def test_long_quiet_before_speech_is_dropped_and_stream_times_go_on() -> None:
    quiet_ms = QUIET_KEPT_MS + 1_000
    found: asyncio.Future[tuple[tuple[int, int], int]] = asyncio.get_running_loop().create_future()

    async def script(peer: Peer) -> None:
        turn = await peer.wait_for_user_turn(silence_ms=300, timeout_s=2 * UNIT_S)
        found.set_result((turn, len(peer.audio)))
        await asyncio.Event().wait()

    audio = bytes(quiet_ms * BYTES_PER_MS) + tone_pcm16(600) + bytes(400 * BYTES_PER_MS)
    async with RealtimeServer(script) as server, connect(server.url) as socket:
        step = 1000 * BYTES_PER_MS
        for start in range(0, len(audio), step):
            chunk = base64.b64encode(audio[start : start + step]).decode()
            await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        (start_ms, end_ms), kept_bytes = await asyncio.wait_for(found, UNIT_S)
    assert start_ms == quiet_ms and end_ms == quiet_ms + 600
    assert kept_bytes < 5_000 * BYTES_PER_MS  # the minute of quiet is gone
