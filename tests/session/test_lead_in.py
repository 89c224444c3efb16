"""The whole bot: the anti-clipping lead silence plays while the model thinks, not in front of its answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.voice.playback import OPUS_SILENCE_FRAME
from bot.voice.rtp import parse_rtp
from bot.voice.sender import TRAILING_SILENCE_FRAMES
from bot.voice.transport_crypto import RtpSizeDecryptor
from tests.realtime.server import Peer, idle, tone_pcm16
from tests.voice.packets import speech_48k_stereo
from tests.whole_bot import ALICE, Room, eventually, room

THINK_S = 1.0
ANSWER_MS = 600
#: Frames of lead silence (200 ms) the source plays before an answer after a pause.
LEAD_FRAMES = 10


async def thinks_then_answers(peer: Peer) -> None:
    """The model takes a second to start speaking once the bot asks for an answer."""
    await peer.wait_for_user_turn()
    await peer.expect("conversation.item.create")  # the speaker label
    await peer.user_transcript(peer.last_user_item_id, "Hello there")
    await peer.expect("response.create")
    await asyncio.sleep(THINK_S)
    response_id = await peer.start_response()
    await peer.stream_audio(response_id, tone_pcm16(ANSWER_MS, 440.0), "Hello!")
    await peer.finish_response(response_id)
    await idle(peer)


def bot_payloads(lounge: Room) -> list[bytes]:
    """The Opus payloads the bot sent, in order."""
    server = lounge.voice_server
    decryptor = RtpSizeDecryptor(server.secret_key)
    packets = sorted((parse_rtp(d) for d in server.voice_datagrams), key=lambda p: p.sequence)
    return [decryptor.decrypt(p) for p in packets if p.ssrc == server.bot_ssrc]


async def test_the_lead_silence_is_sent_while_the_model_thinks(tmp_path: Path) -> None:
    async with room(tmp_path, thinks_then_answers, settings={"transcripts": True}) as lounge:
        await lounge.join(ALICE)
        speaking_before = len(lounge.voice_server.ops_received(5))
        await lounge.speak(ALICE, speech_48k_stereo())
        await eventually(lambda: "**Aiko:** Hello!" in lounge.posts())
        await eventually(lambda: not lounge.session.playback.is_playing)
        await eventually(
            lambda: [m["d"]["speaking"] for m in lounge.voice_server.ops_received(5)[speaking_before:]] == [1, 0]
        )
        payloads = bot_payloads(lounge)
        first_audio = next(i for i, p in enumerate(payloads) if p != OPUS_SILENCE_FRAME)
        # SPEAKING went on and silence flowed from the moment the answer was asked for: a second of it (50 frames,
        # fewer if the sender's clock restarted under load), where a lead silence in front of the answer is 10.
        assert first_audio > 2 * LEAD_FRAMES, first_audio
        assert set(payloads[:first_audio]) == {OPUS_SILENCE_FRAME}
        audio = payloads[first_audio:]
        assert audio[-TRAILING_SILENCE_FRAMES:] == [OPUS_SILENCE_FRAME] * TRAILING_SILENCE_FRAMES
        assert OPUS_SILENCE_FRAME not in audio[: ANSWER_MS // 20 - 2]  # then the answer, with no lead in front
