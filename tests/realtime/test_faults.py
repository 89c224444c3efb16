"""The driver against misbehaving servers: drops mid-turn, silence, fatal closes, refused settings, echoed keys,
absurd JSON. Real WebSockets on loopback; every client event is checked against the openai schema."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import AsyncIterator

import pytest

from bot.fakeserver import peer as shipped_peer
from bot.realtime import outputs as out
from bot.realtime.driver import RealtimeSession
from bot.realtime.errors import RejectedError
from bot.realtime.protocol import Bounds
from bot.tools import ToolRegistry
from tests.realtime.conftest import ServerFactory
from tests.realtime.helpers import (
    CACHED_AUDIO_USAGE,
    FAST_RETRY,
    collect_until,
    endpoint,
    has,
    of_type,
    persona_settings,
    session_for,
)
from tests.realtime.server import BYTES_PER_MS, UNIT_S, Peer, idle, tone_pcm16
from tests.voice.fake_gateway import wait_until

#: Bounds shrunk for tests (the bot's are 10 s / 30 s / 10 s).
SHORT = Bounds(response_created_s=0.3, response_stalled_s=2 * UNIT_S, session_updated_s=UNIT_S)
SILENCE_20MS = bytes(20 * BYTES_PER_MS)


@contextlib.asynccontextmanager
async def speaking(session: RealtimeSession, speech_ms: int = 400) -> AsyncIterator[None]:
    """Push ``speech_ms`` of tone, then silence every 20 ms (as the Discord receiver does) until the block ends."""

    async def pump() -> None:
        await wait_until(lambda: session.protocol.ready)
        session.push_audio(tone_pcm16(speech_ms))
        while True:
            session.push_audio(SILENCE_20MS)
            await asyncio.sleep(0.02)

    task = asyncio.ensure_future(pump())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def item_kinds(peer: shipped_peer.Peer) -> list[str]:
    return [e["type"] for e in peer.received if e["type"] != "input_audio_buffer.append"]


async def answer_turns(session: RealtimeSession, label: str) -> None:
    """The guild session's part: label each committed turn and ask for its answer."""
    async for event in session.events():
        if isinstance(event, out.UserTurnCommitted):
            await session.label_turn(event.previous_item_id, label)
            await session.respond()


# -- 1. no lost turn -----------------------------------------------------------------------------------------------


async def test_a_drop_before_the_answer_carries_the_untranscribed_audio_and_asks_again(
    realtime_server: ServerFactory,
) -> None:
    turn_ms: list[int] = []

    async def hears_then_drops(peer: Peer) -> None:
        start_ms, end_ms = await peer.wait_for_user_turn(silence_ms=200)
        turn_ms.append(end_ms - start_ms)
        await peer.expect("conversation.item.create")  # the speaker label
        await peer.expect("response.create")
        await peer.drop()  # before the transcript, before the answer

    async def resumes(peer: Peer) -> None:
        await peer.configured.wait()
        note = await peer.expect("conversation.item.create")
        assert note["item"]["role"] == "system" and note["item"]["content"][0]["text"] == "[Alice is speaking]"
        carried = await peer.expect("conversation.item.create")
        [content] = carried["item"]["content"]
        assert carried["item"]["role"] == "user" and content["type"] == "input_audio"
        assert len(base64.b64decode(content["audio"])) == turn_ms[0] * BYTES_PER_MS
        await peer.expect("response.create")
        await peer.answer_with_audio(tone_pcm16(60), "Hello Alice.")
        await idle(peer)

    async with realtime_server([hears_then_drops, resumes]) as server:
        session = session_for(server)
        await session.start()
        labeller = asyncio.ensure_future(answer_turns(session, "Alice"))
        async with speaking(session):
            await wait_until(lambda: ("assistant", "Hello Alice.") in session.protocol.history, 3 * UNIT_S)
        await session.close()
        labeller.cancel()
    assert item_kinds(server.peers[1]).count("response.create") == 1


@pytest.mark.parametrize("tool_done_before_drop", [False, True], ids=["tool-running", "output-sent"])
async def test_a_drop_during_a_tool_call_re_creates_the_call_and_its_output_then_asks_again(
    realtime_server: ServerFactory, tool_done_before_drop: bool
) -> None:
    release = threading.Event()
    runs: list[str] = []
    tools = ToolRegistry()

    def lookup(query: str) -> str:
        """Look something up.

        Args:
            query: what to look up.
        """
        runs.append(query)
        release.wait(4 * UNIT_S)
        return f"found {query}"

    tools.register(lookup, timeout_s=4 * UNIT_S)
    call_ids: list[str] = []

    async def calls_then_drops(peer: Peer) -> None:
        await peer.configured.wait()
        await peer.user_transcript("item_u1", "look up ramen")
        response_id = await peer.start_response()
        call_ids.extend(await peer.call_tools([("lookup", '{"query": "ramen"}')], response_id=response_id))
        if tool_done_before_drop:
            release.set()
            await peer.expect("conversation.item.create")
            await peer.finish_response(response_id)
            await peer.expect("response.create")  # asked, never answered: the socket dies
        await peer.drop()

    async def resumes(peer: Peer) -> None:
        await peer.configured.wait()
        history = await peer.expect("conversation.item.create")
        assert history["item"]["content"][0]["text"] == "look up ramen"
        call = await peer.expect("conversation.item.create")
        assert call["item"] == {
            "type": "function_call",
            "call_id": call_ids[0],
            "name": "lookup",
            "arguments": '{"query": "ramen"}',
        }
        release.set()
        output = await peer.expect("conversation.item.create")
        assert output["item"] == {"type": "function_call_output", "call_id": call_ids[0], "output": "found ramen"}
        await peer.expect("response.create")
        await peer.answer_with_audio(tone_pcm16(60), "Ramen is great.")
        await idle(peer)

    async with realtime_server([calls_then_drops, resumes]) as server:
        session = session_for(server, tools=tools)
        await session.start()
        events = await collect_until(session, has(out.AssistantTranscript))
        await session.close()
    assert runs == ["ramen"]  # the tool ran once, its output served the resumed turn
    assert len(of_type(events, out.ToolCallFinished)) == 1 and session.reconnects == 1


# -- 2. bounded waits ----------------------------------------------------------------------------------------------


async def test_an_unanswered_response_create_is_retried_once_then_reported_and_the_session_goes_on(
    realtime_server: ServerFactory,
) -> None:
    async def deaf_then_fine(peer: Peer) -> None:
        await peer.configured.wait()
        await peer.expect("conversation.item.create")
        await peer.expect("response.create")
        await peer.expect("response.create", timeout_s=UNIT_S)  # the one retry, and no more:
        await peer.expect("conversation.item.create")  # the next event is the user's next message
        await peer.expect("response.create")
        await peer.answer_with_audio(b"", "Sorry, what was that?")
        await idle(peer)

    async with realtime_server(deaf_then_fine) as server:
        session = session_for(server, bounds=SHORT)
        await session.start()
        await session.send_text("hello?")
        idle_waiter = asyncio.ensure_future(session.wait_until_idle())
        events = await collect_until(session, has(out.AnswerFailed))
        assert await asyncio.wait_for(idle_waiter, UNIT_S)  # the give-up leaves the session idle
        assert not session.protocol.busy and not session.protocol.answer_owed
        await session.send_text("hello again?")
        events += await collect_until(session, has(out.AssistantTranscript))
        await session.close()
    [failed] = of_type(events, out.AnswerFailed)
    assert "no answer started within 0.3 s" in failed.reason
    assert len(server.peers) == 1 and not of_type(events, out.Reconnecting)


async def test_a_server_that_was_only_slow_answers_both_requests_and_only_the_first_answer_is_heard(
    realtime_server: ServerFactory,
) -> None:
    async def slow(peer: Peer) -> None:
        await peer.configured.wait()
        await peer.expect("conversation.item.create")
        first = await peer.expect("response.create")
        second = await peer.expect("response.create", timeout_s=UNIT_S)  # the bot's retry, after its bound
        await peer.answer_with_audio(tone_pcm16(200), "Hi there!", request=first)
        surplus_id = await peer.start_response(second)  # the slow server gets round to the retry too
        cancel = await peer.expect("response.cancel")
        assert cancel["response_id"] == surplus_id
        await peer.stream_audio(surplus_id, tone_pcm16(200, 880.0), "Hi there, again!")
        await peer.finish_response(surplus_id, status="cancelled")
        await idle(peer)

    async with realtime_server(slow) as server:
        session = session_for(server, bounds=SHORT)
        await session.start()
        await session.send_text("hello?")
        # both responses' usage: the surplus one (cancelled) has been read to its end
        events = await collect_until(session, has(out.UsageReport, 2))
        assert not session.protocol.busy
        await session.close()
    [peer] = server.peers
    assert [e["type"] for e in peer.received].count("response.cancel") == 1
    heard = b"".join(e.pcm16 for e in of_type(events, out.AssistantAudio))
    assert heard == tone_pcm16(200) and [e.text for e in of_type(events, out.AssistantTranscript)] == ["Hi there!"]
    assert not of_type(events, out.AnswerFailed) and server.schema_problems == []


async def test_a_server_that_never_confirms_the_configuration_fails_start_in_bounded_time(
    realtime_server: ServerFactory,
) -> None:
    async with realtime_server(idle, hold_updates=True) as server:
        session = session_for(server, open_timeout_s=0.3)
        with pytest.raises(Exception, match="did not confirm the session configuration"):
            await asyncio.wait_for(session.start(), 2 * UNIT_S)


# -- 3. fatal means fatal ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "reason"), [(4001, "invalid key"), (1008, "policy violation")])
async def test_an_auth_or_policy_close_ends_the_session_at_once_with_the_reason(
    realtime_server: ServerFactory, code: int, reason: str
) -> None:
    async def refuses(peer: Peer) -> None:
        await peer.expect("session.update")
        await peer.close(code, reason)

    async with realtime_server(refuses, hold_updates=True) as server:
        session = session_for(server)
        with pytest.raises(RejectedError) as failure:
            await session.start()
    assert str(failure.value) == f"the Realtime server closed the session (close code {code}: {reason})"
    assert len(server.peers) == 1


async def test_a_close_mid_session_with_4xxx_stops_but_1011_is_retried(realtime_server: ServerFactory) -> None:
    async def server_error(peer: Peer) -> None:
        await peer.configured.wait()
        await peer.close(1011, "internal error")

    async def bad_key(peer: Peer) -> None:
        await peer.configured.wait()
        await peer.close(4001, "key revoked")

    async with realtime_server([server_error, bad_key, idle]) as server:
        session = session_for(server)
        await session.start()
        events = await collect_until(session, has(out.SessionEnded))
        await session.close()
    assert [r.reason for r in of_type(events, out.Reconnecting)] == [
        "the Realtime connection dropped (close code 1011: internal error)"
    ]
    assert events[-1] == out.SessionEnded("the Realtime server closed the session (close code 4001: key revoked)")
    assert len(server.peers) == 2


@pytest.mark.parametrize("error_type", ["authentication_error", "permission_error"])
async def test_an_auth_or_permission_error_event_is_fatal_whatever_its_code(
    realtime_server: ServerFactory, error_type: str
) -> None:
    async def refuses(peer: Peer) -> None:
        await peer.configured.wait()
        await peer.error("some_new_code", "You may not use this model", error_type=error_type)
        await idle(peer)

    async with realtime_server(refuses) as server:
        session = session_for(server)
        await session.start()
        events = await collect_until(session, has(out.SessionEnded))
        await session.close()
    assert events[-1] == out.SessionEnded("the Realtime server refused the session: You may not use this model")
    assert len(server.peers) == 1


VOICE_REFUSAL = ("invalid_value", "Invalid value: 'bogus'. Supported values are: 'alloy', 'marin'.")


async def test_a_refused_first_session_update_fails_start_with_the_servers_message(
    realtime_server: ServerFactory,
) -> None:
    async with realtime_server(idle, refuse_update=lambda event, n: VOICE_REFUSAL) as server:
        with pytest.raises(RejectedError) as failure:
            await session_for(server).start()
    assert str(failure.value) == f"the Realtime server rejected the session settings: {VOICE_REFUSAL[1]}"
    assert len(server.peers) == 1


async def test_a_refused_later_update_is_reported_and_the_confirmed_settings_stay(
    realtime_server: ServerFactory,
) -> None:
    from dataclasses import replace

    async def then_drop(peer: Peer) -> None:
        await wait_until(lambda: len(peer.session_updates) >= 2)
        await asyncio.sleep(0.05)
        await peer.drop()

    refuse_second = lambda event, n: VOICE_REFUSAL if n == 2 else None  # noqa: E731
    async with realtime_server([then_drop, idle], refuse_update=refuse_second) as server:
        session = session_for(server)
        await session.start()
        original = session.protocol.settings
        await session.update_settings(replace(original, instructions="Be rude."))
        events = await collect_until(session, has(out.SessionReady, 2))
        await session.close()
    [rejected] = of_type(events, out.SettingsRejected)
    assert rejected == out.SettingsRejected("invalid_value", VOICE_REFUSAL[1], initial=False)
    replayed = server.peers[1].session_updates[0]["session"]
    assert replayed["instructions"] == original.instructions  # the refused update was not carried over


# -- 4. redaction --------------------------------------------------------------------------------------------------

ECHOED_KEY = "sk-echoed-0123456789abcdef"


async def test_a_server_echoing_the_key_never_gets_it_shown(
    realtime_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")

    async def echoes(peer: Peer) -> None:
        await peer.configured.wait()
        await peer.error("invalid_request_error", f"Bad request with key {ECHOED_KEY} in it")
        await peer.user_transcript("item_u", f"my key is {ECHOED_KEY}")
        await peer.error("invalid_api_key", f"Incorrect API key provided: {ECHOED_KEY}.")
        await idle(peer)

    async with realtime_server(echoes, api_key=ECHOED_KEY) as server:
        settings, tools = persona_settings()
        session = RealtimeSession(endpoint(server, key=ECHOED_KEY), settings, tools, policy=FAST_RETRY)
        await session.start()
        events = await collect_until(session, has(out.SessionEnded))
        await session.close()
    shown = [repr(e) for e in events] + [r.getMessage() for r in caplog.records if r.name.startswith("bot")]
    assert not [line for line in shown if ECHOED_KEY in line]
    assert events[-1] == out.SessionEnded("the Realtime server refused the session: Incorrect API key provided: ***.")
    assert of_type(events, out.UserTranscript)[0].text == "my key is ***"


async def test_a_close_reason_echoing_the_key_is_redacted(realtime_server: ServerFactory) -> None:
    async def echoes(peer: Peer) -> None:
        await peer.expect("session.update")
        await peer.close(4001, f"bad key {ECHOED_KEY}")

    async with realtime_server(echoes, api_key=ECHOED_KEY, hold_updates=True) as server:
        settings, tools = persona_settings()
        session = RealtimeSession(endpoint(server, key=ECHOED_KEY), settings, tools, policy=FAST_RETRY)
        with pytest.raises(RejectedError) as failure:
            await session.start()
    assert str(failure.value) == "the Realtime server closed the session (close code 4001: bad key ***)"


# -- 5. robust parsing ---------------------------------------------------------------------------------------------


async def test_absurdly_nested_json_is_one_malformed_event_and_the_answer_goes_on(
    realtime_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    depth = 100_000

    async def nests(peer: Peer) -> None:
        await peer.configured.wait()
        response_id = await peer.start_response()
        await peer.send_raw('{"type": "error", "error": ' + "[" * depth + "]" * depth + "}")
        await peer.error("server_error", "x" * 100_000)
        await peer.stream_audio(response_id, tone_pcm16(60), "Still talking.")
        await peer.finish_response(response_id)
        await idle(peer)

    async with realtime_server(nests) as server:
        session = session_for(server)
        await session.start()
        events = await collect_until(session, has(out.ResponseFinished))
        stats = session.protocol.stats
        await session.close()
    assert stats.malformed_events == 1 and len(server.peers) == 1 and session.reconnects == 0
    assert of_type(events, out.AssistantTranscript)[0].text == "Still talking."
    [error] = of_type(events, out.ErrorReported)
    assert len(error.message) <= 300
    assert max(len(r.getMessage()) for r in caplog.records if r.name.startswith("bot")) < 1000


async def test_a_handshake_refusal_echoing_the_key_in_its_code_is_redacted(realtime_server: ServerFactory) -> None:
    body = json.dumps({"error": {"code": f"key_{ECHOED_KEY}_revoked", "message": ECHOED_KEY}})
    async with realtime_server(idle, handshake_status=403, handshake_body=body) as server:
        settings, tools = persona_settings()
        session = RealtimeSession(endpoint(server, key=ECHOED_KEY), settings, tools, policy=FAST_RETRY)
        with pytest.raises(RejectedError) as failure:
            await session.start()
    assert failure.value.code == "key_***_revoked" and ECHOED_KEY not in str(failure.value)


async def test_usage_with_cached_audio_from_the_wire_is_priced_per_modality(realtime_server: ServerFactory) -> None:
    cached_audio = {"total_tokens": 302, **CACHED_AUDIO_USAGE}

    async def answers(peer: Peer) -> None:
        await peer.configured.wait()
        await peer.user_transcript(
            "u1",
            "hi",
        )
        response_id = await peer.start_response()
        await peer.finish_response(response_id, usage=cached_audio)
        await idle(peer)

    async with realtime_server(answers) as server:
        session = session_for(server)
        await session.start()
        [report] = of_type(await collect_until(session, has(out.UsageReport)), out.UsageReport)
        summary = session.protocol.usage_summary()
        await session.close()
    expected = (59 * 4 + (73 - 64) * 32 + 64 * 0.4 + 18 * 16 + 152 * 64) / 1e6  # gpt-realtime-1.5's page
    assert report.part_cost_usd == pytest.approx(expected) and summary.endswith("about $0.0106")
    assert len(server.peers) == 1
