"""Who controls the bot in a shared server, through the real cogs and the whole bot: the loopback voice gateway and
the local Realtime server, which records everything each connection received.

A move, by a manager's ``/voice join`` or a moderator's drag, must start a fresh conversation: the new channel's
Realtime connection never receives anything said in the old one (history, labels, roster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from websockets.protocol import State

from bot import texts
from bot.config import load_config
from bot.fakeserver.peer import Peer
from bot.session.wiring import audio_recipient
from tests.discord_world import BOOTH, PODIUM, STAGE, STUDIO
from tests.realtime.server import idle
from tests.whole_bot import ALICE, BOB, GUILD_ID, LOUNGE_ID, Room, eventually, room

DAVE = 8
SECRET = "The staff password is swordfish"


def consent_posts(lounge: Room) -> list[tuple[int, str]]:
    return [(channel, text) for channel, text in lounge.bot.posted if "is listening in" in text]


def everything_received(peer: Peer) -> str:
    return json.dumps(peer.received)


async def test_someone_in_another_channel_cannot_take_the_bot_away(tmp_path: Path) -> None:
    async with room(tmp_path, idle) as lounge:
        joined = await lounge.join(ALICE)
        assert not joined.last.ephemeral  # everyone sees the bot came in
        first = lounge.session
        refused = await lounge.join(DAVE)  # dave sits in the Booth
        assert refused.last.content == texts.in_use(f"<#{LOUNGE_ID}>", 2) and refused.last.ephemeral
        assert lounge.session is first and first.channel_id == LOUNGE_ID
        assert len(lounge.realtime.peers) == 1
        assert lounge.bot.main_gateway.requests == [(GUILD_ID, LOUNGE_ID)]  # never left the Lounge


async def test_a_managers_move_starts_a_fresh_conversation_with_nothing_carried_over(tmp_path: Path) -> None:
    async with room(tmp_path, [idle, idle]) as lounge:
        await lounge.join(ALICE)
        old = lounge.session
        await lounge.command("VoiceCog", "say", ALICE, text=SECRET)
        first = lounge.realtime.peers[0]
        await eventually(lambda: SECRET in everything_received(first))
        assert "alice" in json.dumps(first.session_updates)  # the old channel's roster

        lounge.world.move(BOB, STUDIO)  # bob, a manager, in the Studio
        moved = await lounge.join(BOB)
        assert moved.last.content == texts.moved_fresh(f"<#{STUDIO}>", "Aiko") and not moved.last.ephemeral
        new = lounge.session
        assert new is not old and new.channel_id == STUDIO
        await eventually(lambda: len(lounge.realtime.peers) == 2)
        second = lounge.realtime.peers[1]
        await eventually(lambda: first.connection.state is State.CLOSED)  # the old conversation is gone
        await eventually(lambda: any("bob" in json.dumps(u) for u in second.session_updates))
        heard = everything_received(second)
        assert "swordfish" not in heard and "alice" not in heard and "carol" not in heard
        assert [channel for channel, _ in consent_posts(lounge)] == [LOUNGE_ID, STUDIO]


async def test_a_moderator_drag_starts_a_fresh_conversation_in_the_new_channel(tmp_path: Path) -> None:
    async with room(tmp_path, [idle, idle]) as lounge:
        await lounge.join(ALICE)
        old = lounge.session
        await lounge.command("VoiceCog", "say", ALICE, text=SECRET)
        first = lounge.realtime.peers[0]
        await eventually(lambda: SECRET in everything_received(first))
        lounge.gateway_voice_state(99, LOUNGE_ID)
        lounge.world.move(BOB, STUDIO)
        lounge.gateway_voice_state(99, STUDIO)  # a moderator drags the bot into the Studio
        await eventually(lambda: lounge.bot.sessions.get(GUILD_ID) not in (None, old))
        assert lounge.session.channel_id == STUDIO
        await eventually(lambda: len(lounge.realtime.peers) == 2)
        second = lounge.realtime.peers[1]
        await eventually(lambda: first.connection.state is State.CLOSED)
        await eventually(lambda: bool(second.session_updates))
        assert "swordfish" not in everything_received(second)
        await eventually(lambda: [c for c, _ in consent_posts(lounge)] == [LOUNGE_ID, STUDIO])


def test_the_consent_notice_names_who_receives_the_audio_and_never_a_secret() -> None:
    def recipient(**env: str) -> str:
        return audio_recipient(load_config({"DISCORD_TOKEN": "t-abcdef", **env}, env_file=None).realtime)

    assert recipient(OPENAI_API_KEY="sk-abcdef") == "OpenAI"
    azure = recipient(
        REALTIME_PROVIDER="azure",
        AZURE_OPENAI_ENDPOINT="https://res.openai.azure.com/",
        AZURE_OPENAI_API_KEY="azure-key-123456",
        AZURE_OPENAI_DEPLOYMENT="my-realtime",
    )
    assert azure == "Microsoft Azure (OpenAI)"
    custom = recipient(
        REALTIME_PROVIDER="custom", REALTIME_URL="wss://user:hunter2@models.example.com:8443/v1/realtime"
    )
    assert custom == "models.example.com"  # the host only: no credentials, port or path


async def test_the_consent_notice_names_the_provider_and_rejoining_says_already_here(tmp_path: Path) -> None:
    async with room(tmp_path, idle, settings={"transcripts": False}) as lounge:
        await lounge.join(ALICE)
        await eventually(lambda: bool(consent_posts(lounge)))
        [(channel, notice)] = consent_posts(lounge)
        assert channel == LOUNGE_ID
        assert notice == texts.consent_notice("Aiko", f"<#{LOUNGE_ID}>", "127.0.0.1", transcripts=False)
        assert "/voice privacy" in notice and "Transcripts are **off**" in notice
        again = await lounge.join(ALICE)
        assert again.last.content == texts.ALREADY_HERE.format(channel=f"<#{LOUNGE_ID}>")
        assert len(lounge.realtime.peers) == 1
        left = await lounge.command("VoiceCog", "leave", ALICE)
        assert left.last.content == texts.left_channel(f"<#{LOUNGE_ID}>") and not left.last.ephemeral


async def test_on_a_stage_the_bot_asks_to_speak(tmp_path: Path) -> None:
    async with room(tmp_path, idle) as lounge:
        lounge.world.move(ALICE, STAGE)  # the bot's role may Request to Speak there, not Mute Members
        joined = await lounge.join(ALICE)
        assert texts.stage_requested(f"<#{STAGE}>") in (joined.last.content or "")
        assert lounge.session.channel_id == STAGE
        [(guild_id, payload)] = lounge.bot.recording_http.voice_state_edits
        assert guild_id == GUILD_ID and payload["channel_id"] == str(STAGE)
        assert "request_to_speak_timestamp" in payload and "suppress" not in payload


async def test_on_a_stage_it_moderates_the_bot_becomes_a_speaker(tmp_path: Path) -> None:
    async with room(tmp_path, idle) as lounge:
        lounge.world.move(ALICE, PODIUM)
        joined = await lounge.join(ALICE)
        assert joined.last.content == texts.joined(f"<#{PODIUM}>", "Aiko")  # nothing to wait for
        [(_guild_id, payload)] = lounge.bot.recording_http.voice_state_edits
        assert payload == {"channel_id": str(PODIUM), "suppress": False}


async def test_forget_on_a_live_session_applies_the_defaults_at_once(tmp_path: Path) -> None:
    def silence_ms(update: dict[str, Any]) -> int:
        return int(update["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"])

    async with room(tmp_path, idle, settings={"silence_ms": 1200}) as lounge:
        await lounge.join(ALICE)
        peer = lounge.realtime.peers[0]
        await eventually(lambda: bool(peer.session_updates))
        assert silence_ms(peer.session_updates[-1]) == 1200
        await lounge.bot.store.set_privacy(GUILD_ID, DAVE, no_listen=True)
        asked = await lounge.command("VoiceAdminCog", "forget", BOB)
        assert asked.last.content == texts.FORGET_CONFIRM and asked.last.view is not None
        click = lounge.interaction(BOB)
        await asked.last.view.yes.callback(click.as_interaction())  # type: ignore[attr-defined]
        assert click.last.content == texts.forgotten(1, 1)
        await eventually(lambda: silence_ms(peer.session_updates[-1]) == 500)  # the default, in the live session
        assert (await lounge.bot.store.privacy(GUILD_ID, DAVE)).no_listen  # dave stays unheard
        assert lounge.session.state.privacy_of(DAVE).no_listen


async def test_a_full_channel_is_refused_before_anything_opens(tmp_path: Path) -> None:
    async with room(tmp_path, idle) as lounge:
        refused = await lounge.join(DAVE)  # the Booth holds one, and dave is in it
        assert refused.last.content == texts.channel_full(f"<#{BOOTH}>", 1, 1)
        assert lounge.bot.sessions.get(GUILD_ID) is None and lounge.realtime.peers == []


async def test_privacy_choices_apply_to_a_live_session_at_once(tmp_path: Path) -> None:
    async with room(tmp_path, idle, settings={"mode": "name"}) as lounge:
        await lounge.join(ALICE)
        gate = lounge.session.turns.may_send
        assert gate(ALICE)
        opted = await lounge.command("VoiceCog", "privacy", ALICE, listening=False)
        assert opted.last.content == texts.PRIVACY_SAVED.format(transcripts="shown", listening="off")
        assert not gate(ALICE)  # not from the next session: now
        await lounge.command("VoiceCog", "privacy", ALICE, listening=True)
        assert gate(ALICE)
