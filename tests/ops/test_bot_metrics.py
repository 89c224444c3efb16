"""``/healthz`` and ``/metrics`` of the real bot in the scripted Discord world, scraped over HTTP during a spoken
turn; then a clean shutdown: the channel reads and hears that the bot restarts, and the session's usage is written.

The bot here is the production ``VoiceBot`` with its cogs, its real voice path on the loopback voice gateway and the
local Realtime server (see ``tests/whole_bot.py``); only Discord's main gateway is a stand-in, so the bot is never
logged in and ``/healthz`` must say 503. The logged-in 200 is tested on a real process in ``test_process.py``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot import texts
from bot.config import DEFAULT_MODEL
from bot.ops.health import HealthServer
from bot.room.turn_timing import SEGMENTS
from tests.ops.scrape import free_port, healthz, scrape, value
from tests.realtime.server import Peer, idle, tone_pcm16
from tests.voice.packets import speech_48k_stereo
from tests.whole_bot import ALICE, GUILD_ID, eventually, room, voiced_ms

QUESTION = "What is your favorite food?"


async def answer_then_hear_the_restart(peer: Peer) -> None:
    """The model answers one spoken question, then is asked to say the restart notice, and says it."""
    await peer.wait_for_user_turn()
    await peer.expect("conversation.item.create")  # who is speaking
    await peer.user_transcript(peer.last_user_item_id, QUESTION)
    await peer.expect("response.create")
    await peer.answer_with_audio(tone_pcm16(600, 440.0), "Spicy miso ramen!")
    while True:  # roster or settings updates may come first
        event = await peer.next_event(timeout_s=30)
        if event["type"] == "conversation.item.create" and event["item"]["role"] == "user":
            break
    assert texts.RESTARTING in event["item"]["content"][0]["text"]
    await peer.expect("response.create")
    await peer.answer_with_audio(tone_pcm16(400, 330.0), "I'll be right back!")
    await idle(peer)


async def test_metrics_and_health_over_http_then_a_clean_restart(tmp_path: Path) -> None:
    async with room(tmp_path, answer_then_hear_the_restart) as lounge:
        port = free_port()
        server = HealthServer(port, lounge.bot.health, host="127.0.0.1")
        await server.start()
        try:
            before = await scrape(port)
            await lounge.join(ALICE)
            await lounge.speak(ALICE, speech_48k_stereo())
            await eventually(lambda: "voiced_to_played" in lounge.session.turn_timings.summary())
            after = await scrape(port)

            assert value(after, "voicebot_sessions_active") == 1
            for name in ("voicebot_turns_total", "voicebot_answers_total"):
                assert value(after, name) - value(before, name) == 1, name
            for segment in SEGMENTS:  # the four segments /voice status shows, one turn each
                count = "voicebot_turn_segment_seconds_count"
                assert value(after, count, segment=segment) - value(before, count, segment=segment) == 1, segment
            tokens = "voicebot_realtime_tokens_total"
            assert value(after, tokens, model=DEFAULT_MODEL, direction="output") > value(
                before, tokens, model=DEFAULT_MODEL, direction="output"
            )
            decoded = "voicebot_voice_receive_packets_total"
            assert value(after, decoded, reason="decoded") > value(before, decoded, reason="decoded")
            assert all(str(GUILD_ID) not in dict(labels).values() for _name, labels in after)  # no guild ids

            status, body = await healthz(port)  # the stand-in main gateway never logs the bot in
            assert status == 503 and body["ready"] is False and body["sessions"] == 1

            played_before = voiced_ms(lounge.voice_server.decode_bot_audio()[0])
            await lounge.bot.shutdown(notice_wait_s=5.0)
            assert texts.RESTARTING in lounge.posts()
            assert voiced_ms(lounge.voice_server.decode_bot_audio()[0]) > played_before + 200  # the notice, heard
            assert len(lounge.bot.sessions) == 0 and lounge.world.guild.voice_client is None
            assert value(await scrape(port), "voicebot_sessions_active") == 0
        finally:
            await server.close()
    usage_seconds = await _usage_seconds(tmp_path)
    assert usage_seconds > 0  # the session's time was written on the way out


async def _usage_seconds(data_dir: Path) -> float:
    from bot.store.sqlite import SqliteStore

    store = await SqliteStore.in_data_dir(data_dir)
    try:
        return (await store.usage(GUILD_ID, dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"))).seconds
    finally:
        await store.close()
