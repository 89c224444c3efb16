"""Against real Discord: join a voice channel under DAVE, play a tone as the bot does, decrypt what people say.

Needs DISCORD_TOKEN and LIVE_VOICE_CHANNEL_ID. With LIVE_EXPECT_SPEECH=1 someone must talk in the channel during
the listening window (default 15 s, LIVE_LISTEN_SECONDS), and the test then requires DAVE-decrypted, decoded audio.
"""

from __future__ import annotations

import asyncio
import os

import discord
import numpy as np
import pytest

from bot.voice.client import ReceivingVoiceClient
from bot.voice.playback import OpusPlaybackSource
from bot.voice.sender import VoiceSender

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (os.environ.get("DISCORD_TOKEN") and os.environ.get("LIVE_VOICE_CHANNEL_ID")),
        reason="live Discord voice test: set DISCORD_TOKEN and LIVE_VOICE_CHANNEL_ID to run it",
    ),
]


async def test_live_voice_round_trip() -> None:
    token = os.environ["DISCORD_TOKEN"]
    channel_id = int(os.environ["LIVE_VOICE_CHANNEL_ID"])
    listen_s = float(os.environ.get("LIVE_LISTEN_SECONDS", "15"))
    expect_speech = os.environ.get("LIVE_EXPECT_SPEECH") == "1"
    client = discord.Client(intents=discord.Intents(guilds=True, voice_states=True))
    result: dict[str, object] = {}

    @client.event
    async def on_ready() -> None:
        try:
            channel = client.get_channel(channel_id) or await client.fetch_channel(channel_id)
            assert isinstance(channel, discord.VoiceChannel), f"{channel_id} is not a voice channel"
            vc = await channel.connect(cls=ReceivingVoiceClient, timeout=30)
            assert isinstance(vc, ReceivingVoiceClient)
            heard: list[bytes] = []
            vc.set_user_audio_handler(lambda _user, pcm, _level: heard.append(pcm))
            source = OpusPlaybackSource()
            vc.play_source(source, sender=VoiceSender())  # the bot's own send path (DAVE-encrypted by discord.py)
            t = np.arange(24_000) / 24_000
            source.feed("live-tone", np.rint(6000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes())
            await asyncio.sleep(listen_s)
            result.update(
                mode=vc.mode,
                dave=vc._connection.dave_protocol_version,
                played_ms=source.played_ms("live-tone"),
                metrics=vc.metrics.snapshot(),
                heard_frames=len(heard),
            )
            await vc.disconnect(force=True)
        except BaseException as exc:  # reported by the test body
            result["error"] = exc
        finally:
            await client.close()

    await asyncio.wait_for(client.start(token), timeout=listen_s + 90)
    if "error" in result:
        raise AssertionError(f"live voice failed: {result['error']!r}")
    assert result["mode"] == "aead_xchacha20_poly1305_rtpsize"
    assert result["played_ms"] == pytest.approx(1000, abs=40)
    metrics = result["metrics"]
    assert isinstance(metrics, dict)
    assert metrics.get("internal_error", 0) == 0
    if expect_speech:
        assert isinstance(result["heard_frames"], int) and result["heard_frames"] > 0, metrics
        if result["dave"]:
            assert metrics.get("dave_decrypted", 0) > 0, metrics
