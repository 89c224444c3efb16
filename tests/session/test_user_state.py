"""Per-user state lives only as long as the user is in the channel: the whole bot, a user who leaves and comes back.

The loopback voice gateway (real Opus, UDP, crypto) and the local Realtime server; the main gateway's
VOICE_STATE_UPDATE goes through discord.py's own parser to the cog, as Discord's would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from tests.realtime.server import idle
from tests.whole_bot import ALICE, CAROL, LOUNGE_ID, eventually, room, tone_48k_stereo


async def test_a_user_who_left_and_came_back_no_longer_holds_the_floor(tmp_path: Path) -> None:
    async with room(tmp_path, idle, settings={"mode": "push-to-talk"}) as lounge:
        await lounge.join(ALICE)
        await eventually(lambda: bool(lounge.realtime.peers) and lounge.realtime.peers[0].configured.is_set())
        peer = lounge.realtime.peers[0]
        session = lounge.session
        await lounge.command("VoiceCog", "talk", ALICE)
        assert session.turns.push_to_talk.is_open(ALICE)
        await lounge.speak(ALICE, tone_48k_stereo(300.0, 1.0))  # heard while the bot is silent: the guard learns her
        await eventually(lambda: session.turns.guard.reference_dbfs(ALICE) is not None)
        await eventually(lambda: len(peer.audio) > 0)

        lounge.gateway_voice_state(ALICE, None)  # alice leaves
        await eventually(lambda: not session.turns.push_to_talk.is_open(ALICE))
        assert ALICE not in session.turns.guard.users_known
        lounge.gateway_voice_state(ALICE, LOUNGE_ID)  # and comes back
        await eventually(lambda: ALICE in lounge.session.voice.member_names())
        assert not session.turns.push_to_talk.is_open(ALICE)

        await asyncio.sleep(1.0)  # the room's silence tail after her first words has gone out
        peer.audio.clear()
        await lounge.speak(ALICE, tone_48k_stereo(300.0, 0.6))
        await asyncio.sleep(0.5)
        sent = np.frombuffer(bytes(peer.audio), "<i2")
        assert sent.size == 0 or int(np.abs(sent).max()) < 100  # her voice no longer reaches the model
        assert session.mode.value == "push-to-talk" and CAROL in lounge.session.voice.member_names()
