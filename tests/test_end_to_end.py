"""The whole bot, end to end: two people in a voice channel, the persona tool, the spoken answer, a barge-in.

Everything real except Discord's main gateway and HTTP API: the bot's cogs and session factory, the voice client on
the loopback voice gateway (real Opus over real UDP, encrypted as Discord does), and the Realtime session against the
local server (real WebSocket, every client event validated against the openai schema).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from websockets.protocol import State

from bot import texts
from bot.persona import default_persona
from tests.realtime.server import Peer, idle, tone_pcm16
from tests.voice.packets import speech_48k_stereo
from tests.whole_bot import ALICE, CAROL, LOUNGE_ID, eventually, room, tone_48k_stereo, voiced_ms

ANSWER_MS = 4000
QUESTION = "What is your favorite food?"
INTERRUPTION = "Sorry, wait a second."


async def conversation(peer: Peer) -> None:
    """The model: hears alice's question, looks the answer up, speaks 4 s; carol cuts in after about a second."""
    await peer.wait_for_user_turn()
    label = await peer.expect("conversation.item.create")  # who is speaking, placed before the turn's audio
    assert label["item"]["content"][0]["text"] == "[alice is speaking]"
    await peer.user_transcript(peer.last_user_item_id, QUESTION)
    await peer.expect("response.create")  # the bot asks for the answer itself
    response_id = await peer.start_response()
    [call_id] = await peer.call_tools(
        [("get_your_info", json.dumps({"query": "favorite food"}))], response_id=response_id
    )
    await peer.finish_response(response_id)
    output = await peer.expect("conversation.item.create")
    assert output["item"]["type"] == "function_call_output" and output["item"]["call_id"] == call_id
    assert json.loads(output["item"]["output"]) == {"favorite_food": "spicy miso ramen"}
    await peer.expect("response.create")  # the model is asked to speak the answer: the classic silent-bot bug
    peer.audio.clear()  # the VAD below listens for the next turn only
    answer_id = await peer.start_response()
    item_id = await peer.stream_audio(answer_id, tone_pcm16(ANSWER_MS, 440.0), "I love spicy miso ramen!")
    await peer.finish_response(answer_id)

    turn = asyncio.ensure_future(peer.wait_for_user_turn())  # speech_started goes out as soon as carol is heard
    seen = []
    while True:
        event = await peer.next_event(timeout_s=15)
        seen.append(event["type"])
        if event["type"] == "conversation.item.truncate":
            break
    assert "response.create" not in seen, seen
    assert event["item_id"] == item_id and event["content_index"] == 0
    peer.server.truncated_at_ms = event["audio_end_ms"]  # type: ignore[attr-defined]
    await turn
    label = await peer.expect("conversation.item.create")
    assert label["item"]["content"][0]["text"] == "[carol is speaking]"
    await peer.user_transcript(peer.last_user_item_id, INTERRUPTION)
    await peer.expect("response.create")  # a real interruption is answered
    await idle(peer)


async def test_two_people_talk_the_bot_looks_up_answers_and_stops_when_interrupted(tmp_path: Path) -> None:
    async with room(tmp_path, conversation, settings={"transcripts": True}) as lounge:
        joined = await lounge.join(ALICE)
        assert "Aiko" in (joined.last.content or "") and not joined.last.ephemeral  # everyone sees the bot came
        session = lounge.session
        assert session.channel_id == LOUNGE_ID

        await lounge.speak(ALICE, speech_48k_stereo())
        persona = default_persona().name
        await eventually(lambda: any(p.startswith(f"**{persona}:**") for p in lounge.posts()))
        await asyncio.sleep(1.0)  # the answer has played for about a second
        await lounge.speak(CAROL, tone_48k_stereo(300.0, 0.8))
        await eventually(lambda: hasattr(lounge.realtime, "truncated_at_ms"))
        truncated_ms = lounge.realtime.truncated_at_ms  # type: ignore[attr-defined]
        await eventually(lambda: f"**carol:** {INTERRUPTION}" in lounge.posts())

        # Barge-in: playback stopped at once, and the model keeps exactly what people heard.
        assert not session.playback.is_playing
        assert 700 <= truncated_ms <= 2500, truncated_ms
        await asyncio.sleep(0.3)  # let the last frames reach the voice server
        played, _packets = lounge.voice_server.decode_bot_audio()
        heard_ms = voiced_ms(played)
        assert abs(heard_ms - truncated_ms) <= 200, (heard_ms, truncated_ms)
        assert heard_ms < ANSWER_MS - 1000

        posts = lounge.posts()
        assert posts.index(f"**alice:** {QUESTION}") < posts.index(f"**{persona}:** I love spicy miso ramen!")
        assert any("get_your_info" in p and "spicy miso ramen" in p for p in posts)
        assert all(channel == LOUNGE_ID for channel, _ in lounge.bot.posted)
        assert session.figures.turns == 2 and session.figures.output_tokens > 0


async def test_a_rejected_key_is_one_short_message_and_the_bot_does_not_stay_in_voice(tmp_path: Path) -> None:
    async with room(tmp_path, idle, api_key="the-right-key") as lounge:
        joined = await lounge.join(ALICE)
        message = joined.last.content or ""
        assert not joined.last.ephemeral and "voice brain" in message  # as public as the join it answers
        assert "test-key" not in message and "Traceback" not in message
        assert lounge.bot.sessions.get(1000) is None
        await eventually(lambda: lounge.world.guild.voice_client is None)


async def test_a_moderator_disconnect_ends_the_session_and_a_new_join_works(tmp_path: Path) -> None:
    async with room(tmp_path, [idle, idle]) as lounge:
        await lounge.join(ALICE)
        first = lounge.session
        lounge.gateway_voice_state(99, LOUNGE_ID)
        lounge.gateway_voice_state(99, None)  # kicked from the channel
        await eventually(lambda: lounge.bot.sessions.get(1000) is None)
        assert first.playback.is_playing is False
        await eventually(lambda: lounge.realtime.peers[0].connection.state is State.CLOSED)  # no zombie session
        await eventually(lambda: lounge.world.guild.voice_client is None)
        await asyncio.sleep(0.2)  # the stand-in gateway's answers to the leave requests arrive (a user is slower)

        again = await lounge.join(CAROL)
        assert "Joined" in (again.last.content or "")
        assert lounge.session is not first
        await eventually(lambda: len(lounge.realtime.peers) == 2)


async def spoken_joke(peer: Peer) -> None:
    """The model answers a typed ``/voice say`` out loud."""
    said = await peer.expect("conversation.item.create", timeout_s=15)
    assert said["item"]["role"] == "user" and said["item"]["content"][0]["text"] == "Tell us a joke"
    await peer.expect("response.create")
    await peer.answer_with_audio(tone_pcm16(600, 440.0), "Why did the ramen blush? It saw the miso dressing.")
    await idle(peer)


async def test_say_status_settings_reset_and_leave_on_a_live_session(tmp_path: Path) -> None:
    async with room(tmp_path, [spoken_joke, idle]) as lounge:
        await lounge.join(ALICE)
        said = await lounge.command("VoiceCog", "say", ALICE, text="Tell us a joke")
        assert said.last.ephemeral and "Tell us a joke" in (said.last.content or "")
        await eventually(lambda: lounge.voice_server.voice_datagrams != [] and lounge.session.figures.output_tokens > 0)
        await eventually(lambda: voiced_ms(lounge.voice_server.decode_bot_audio()[0]) >= 500)

        status = await lounge.command("VoiceCog", "status", ALICE)
        embed = status.last.embed
        assert embed is not None and embed.title is not None and "Aiko" in embed.title
        fields = {field.name: field.value for field in embed.fields}
        assert fields["Channel"] == f"<#{LOUNGE_ID}>" and fields["Reconnects"] == "0"
        assert "out tokens" in (fields["This session"] or "")

        # carol has the manager role (DJ): the API locks the voice once the bot has spoken, so a new voice waits for
        # the next session (the reply says so) and the live session's update does not carry it.
        updates_before = len(lounge.realtime.peers[0].session_updates)
        changed = await lounge.command("VoiceAdminCog", "settings", CAROL, voice="cedar")
        assert changed.last.content is not None and changed.last.content.startswith(texts.settings_saved(True))
        peer = lounge.realtime.peers[0]
        await eventually(lambda: len(peer.session_updates) > updates_before)
        assert "voice" not in peer.session_updates[-1]["session"]["audio"]["output"]
        refused = await lounge.command("VoiceAdminCog", "settings", ALICE, voice="ash")
        assert "Manage Server" in (refused.last.content or "")

        reset = await lounge.command("VoiceCog", "reset", ALICE)
        assert "fresh conversation" in (reset.last.content or "")
        await eventually(lambda: len(lounge.realtime.peers) == 2)  # a fresh Realtime session, same channel
        fresh = lounge.realtime.peers[1]
        await eventually(lambda: bool(fresh.session_updates))
        assert fresh.session_updates[0]["session"]["audio"]["output"]["voice"] == "cedar"

        left = await lounge.command("VoiceCog", "leave", ALICE)
        assert "Left" in (left.last.content or "")
        assert lounge.bot.sessions.get(1000) is None
        await eventually(lambda: fresh.connection.state is State.CLOSED)
        await eventually(lambda: lounge.world.guild.voice_client is None)
