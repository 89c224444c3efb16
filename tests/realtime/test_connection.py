"""The guild-session adapter: settings mapping, the Conversation contract, and in-order delivery to a listener."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.config import Dialect, RealtimeConfig
from bot.persona import default_persona
from bot.realtime.client_events import session_update
from bot.realtime.connection import ANSWER_MAX_OUTPUT_TOKENS, RealtimeConversation, session_settings
from bot.realtime.protocol import Bounds
from bot.secret import Secret
from bot.session.protocols import Conversation
from bot.store import GuildSettings
from tests.realtime.conftest import ServerFactory
from tests.realtime.helpers import FAST_RETRY
from tests.realtime.schema import schema_problems
from tests.realtime.server import UNIT_S, Peer, idle, tone_pcm16
from tests.voice.fake_gateway import wait_until


class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()

    def _add(self, name: str, value: Any = None) -> None:
        self.calls.append((name, value))
        self.changed.set()

    def on_assistant_audio(self, item_id: str, pcm16_24k_mono: bytes) -> None:
        self._add("audio", len(pcm16_24k_mono))

    def on_speech_started(self) -> None:
        self._add("speech_started")

    def on_speech_stopped(self) -> None:
        self._add("speech_stopped")

    def on_turn_committed(self, item_id: str, previous_item_id: str | None) -> None:
        self._add("committed", (item_id, previous_item_id))

    def on_user_transcript(self, item_id: str, text: str) -> None:
        self._add("user", text)

    def on_assistant_transcript(self, text: str) -> None:
        self._add("assistant", text)

    def on_tool_call(self, name: str, arguments: str, output: str) -> None:
        self._add("tool", name)

    def on_usage(self, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
        self._add("usage", (input_tokens, output_tokens, None if cost_usd is None else round(cost_usd, 6)))

    def on_reconnected(self) -> None:
        self._add("reconnected")

    def on_fatal_error(self, message: str) -> None:
        self._add("fatal", message)

    def on_answer_failed(self, message: str) -> None:
        self._add("answer_failed", message)

    def on_settings_rejected(self, message: str) -> None:
        self._add("settings_rejected", message)

    async def wait_for(self, name: str) -> None:
        async def seen() -> None:
            while name not in [c[0] for c in self.calls]:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(seen(), 2 * UNIT_S)


def test_guild_settings_map_onto_the_session() -> None:
    guild = GuildSettings(voice="cedar", interruptions=False, vad_threshold=0.7, silence_ms=800)
    settings = session_settings(default_persona(), guild, default_voice="marin")
    assert (settings.voice, settings.vad_threshold, settings.silence_duration_ms) == ("cedar", 0.7, 800)
    # The guild session decides answers and barge-in (labels, listening modes, echo guard), never the server.
    assert settings.create_response is False and settings.interrupt_response is False
    assert [t["name"] for t in settings.tools] == ["get_your_info"]
    assert session_settings(default_persona(), GuildSettings(), default_voice="marin").voice == "marin"


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_semantic_vad_with_its_eagerness_keeps_the_bot_deciding_when_to_answer(dialect: Dialect) -> None:
    guild = GuildSettings(turn_detection="semantic_vad", eagerness="high", silence_ms=800)
    event = session_update(session_settings(default_persona(), guild, default_voice="marin"), dialect)
    session = event["session"]
    detection = session["audio"]["input"]["turn_detection"] if dialect == "ga" else session["turn_detection"]
    assert detection == {
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": False,
        "interrupt_response": False,
    }
    assert schema_problems(event, dialect) == []
    server_vad = session_update(session_settings(default_persona(), GuildSettings(), default_voice="marin"), dialect)
    plain = server_vad["session"]
    detection = plain["audio"]["input"]["turn_detection"] if dialect == "ga" else plain["turn_detection"]
    assert detection["type"] == "server_vad" and detection["create_response"] is False


async def turn(peer: Peer) -> None:
    await peer.configured.wait()
    await peer.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u1"})
    await peer.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": "u1"})
    await peer.user_transcript("u1", "how old are you?")
    response_id = await peer.start_response()
    await peer.call_tools([("get_your_info", '{"query": "age"}')], response_id=response_id)
    await peer.finish_response(response_id)
    await peer.expect("conversation.item.create")
    await peer.expect("response.create")
    await peer.answer_with_audio(tone_pcm16(100), "I'm 24.")
    await peer.error("insufficient_quota", "out of credit")
    await idle(peer)


async def test_outputs_reach_the_listener_in_order(realtime_server: ServerFactory) -> None:
    listener = Listener()
    async with realtime_server(turn) as server:
        config = RealtimeConfig(provider="custom", url=server.url, api_key=Secret("test-key"))
        conversation = RealtimeConversation(config, default_persona(), GuildSettings(), policy=FAST_RETRY)
        contract: Conversation = conversation  # the adapter satisfies the guild session's protocol
        await conversation.start(listener)
        await listener.wait_for("fatal")
        await contract.close()
    names = [c[0] for c in listener.calls]
    in_wire_order = [n for n in names if n not in ("tool", "usage")]  # the tool runs in a thread meanwhile
    assert in_wire_order == ["speech_started", "speech_stopped", "user", "audio", "assistant", "fatal"]
    assert names.count("tool") == 1 and names.count("usage") == 2
    assert names.index("tool") < names.index("audio")  # the answer came after the tool output
    assert ("tool", "get_your_info") in listener.calls and ("assistant", "I'm 24.") in listener.calls
    cost = ((100 - 30) * 4 + 30 * 0.4 + (20 - 20) * 32 + 20 * 0.4 + 10 * 16 + 50 * 64) / 1e6  # gpt-realtime-1.5
    assert ("usage", (120, 60, round(cost, 6))) in listener.calls
    assert "out of credit" in listener.calls[-1][1]


async def labelled_turns(peer: Peer) -> None:
    """Two committed turns: nothing is answered until asked; each label lands just before its turn's audio."""
    await peer.configured.wait()
    assert peer.session_updates[0]["session"]["audio"]["input"]["turn_detection"]["create_response"] is False
    for item_id, previous in (("u1", None), ("u2", "u1")):
        await peer.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": item_id})
        await peer.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": item_id})
        await peer.send({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous})
        label = await peer.expect("conversation.item.create")
        assert label["previous_item_id"] == (previous or "root")
        assert label["item"]["role"] == "system"
        expected = "[alice is speaking]" if item_id == "u1" else "[several is speaking]"
        assert label["item"]["content"][0]["text"] == expected
    response = await peer.expect("response.create")  # asked for once, after the second turn only
    assert set(response) <= {"type", "event_id", "response"}  # the session's own settings: nothing overridden,
    assert set(response.get("response", {})) <= {"metadata"}  # the request only named (see response_create)
    response_id = await peer.start_response()
    await peer.finish_response(response_id)
    await idle(peer)


async def test_turns_are_labelled_answered_on_request_and_the_roster_reaches_the_model(
    realtime_server: ServerFactory,
) -> None:
    listener = Listener()
    async with realtime_server(labelled_turns) as server:
        config = RealtimeConfig(provider="custom", url=server.url, api_key=Secret("test-key"))
        conversation = RealtimeConversation(config, default_persona(), GuildSettings(), policy=FAST_RETRY)
        await conversation.start(listener)
        await conversation.set_roster(["alice", "carol"])
        await conversation.set_roster(["alice", "carol"])  # unchanged: nothing sent
        await listener.wait_for("committed")
        await conversation.label_turn("u1", None, "alice")
        while [c for c in listener.calls if c[0] == "committed"][-1][1] != ("u2", "u1"):
            listener.changed.clear()
            await asyncio.wait_for(listener.changed.wait(), UNIT_S)
        await conversation.label_turn("u2", "u1", "several")
        await conversation.respond()
        peer = server.peers[0]
        await wait_until(lambda: any(e["type"] == "response.create" for e in peer.received))
        await conversation.close()
    updates = peer.session_updates
    assert len(updates) == 2  # the initial configuration and one roster change
    assert "Now in the voice channel with you: alice, carol." in updates[1]["session"]["instructions"]
    assert "[Alice is speaking]" in updates[0]["session"]["instructions"]  # the labels are explained


async def roster_then_drop(peer: Peer) -> None:
    await peer.configured.wait()
    await wait_until(lambda: len(peer.session_updates) >= 2)
    await peer.drop()


async def test_the_roster_is_replayed_after_a_dropped_connection(realtime_server: ServerFactory) -> None:
    listener = Listener()
    async with realtime_server([roster_then_drop, idle]) as server:
        config = RealtimeConfig(provider="custom", url=server.url, api_key=Secret("test-key"))
        conversation = RealtimeConversation(config, default_persona(), GuildSettings(), policy=FAST_RETRY)
        await conversation.start(listener)
        await conversation.set_roster(["bob"])
        await listener.wait_for("reconnected")
        await conversation.close()
    replayed = server.peers[1].session_updates[0]["session"]["instructions"]
    assert "Now in the voice channel with you: bob." in replayed


async def test_a_lost_answer_and_refused_settings_reach_the_listener_and_the_conversation_goes_on(
    realtime_server: ServerFactory,
) -> None:
    listener = Listener()
    refuse_second = lambda event, n: ("invalid_value", "Invalid 'silence_duration_ms'") if n == 2 else None  # noqa: E731
    async with realtime_server(idle, refuse_update=refuse_second) as server:
        config = RealtimeConfig(provider="custom", url=server.url, api_key=Secret("test-key"))
        bounds = Bounds(response_created_s=0.2)
        conversation = RealtimeConversation(
            config, default_persona(), GuildSettings(), policy=FAST_RETRY, bounds=bounds
        )
        await conversation.start(listener)
        await conversation.respond()  # the server never starts the answer
        await listener.wait_for("answer_failed")
        await conversation.apply_settings(GuildSettings(silence_ms=800), default_persona())
        await listener.wait_for("settings_rejected")
        await conversation.close()
    assert ("answer_failed", "no answer started within 0.2 s") in listener.calls
    assert ("settings_rejected", "Invalid 'silence_duration_ms'") in listener.calls
    assert "fatal" not in [c[0] for c in listener.calls] and len(server.peers) == 1


async def test_a_voice_change_waits_for_the_next_session_and_later_updates_never_carry_the_voice(
    realtime_server: ServerFactory,
) -> None:
    listener = Listener()
    async with realtime_server([idle, idle]) as server:
        config = RealtimeConfig(provider="custom", url=server.url, api_key=Secret("test-key"))
        conversation = RealtimeConversation(config, default_persona(), GuildSettings(voice="marin"), policy=FAST_RETRY)
        await conversation.start(listener)
        await conversation.set_roster(["alice"])
        await conversation.apply_settings(GuildSettings(voice="cedar", silence_ms=700), default_persona())
        await conversation.reset()
        await listener.wait_for("reconnected")
        await conversation.close()
    first, second = (peer.session_updates for peer in server.peers)
    assert first[0]["session"]["audio"]["output"]["voice"] == "marin"
    assert all("voice" not in update["session"]["audio"]["output"] for update in first[1:])
    assert first[-1]["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 700
    assert second[0]["session"]["audio"]["output"]["voice"] == "cedar"  # the fresh session speaks the new voice


def test_every_answer_is_bounded() -> None:
    settings = session_settings(default_persona(), GuildSettings(), default_voice="marin")
    assert settings.max_output_tokens == ANSWER_MAX_OUTPUT_TOKENS <= 4096  # the API's largest number
    assert session_update(settings, "ga")["session"]["max_output_tokens"] == ANSWER_MAX_OUTPUT_TOKENS
    assert session_update(settings, "beta")["session"]["max_response_output_tokens"] == ANSWER_MAX_OUTPUT_TOKENS
