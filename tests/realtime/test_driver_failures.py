"""Parallel calls, barge-in, slow tools, errors, drops, renewal and closing, over real WebSockets on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from bot.realtime import outputs as out
from bot.realtime.driver import RealtimeSession
from bot.realtime.errors import ConnectionFailed, RejectedError
from bot.realtime.retry import RetryPolicy
from bot.tools import ToolRegistry
from tests.realtime.conftest import ServerFactory
from tests.realtime.helpers import FAST_RETRY, collect_until, endpoint, has, of_type, persona_settings, session_for
from tests.realtime.server import UNIT_S, Peer, idle, tone_pcm16


async def test_two_parallel_calls_in_one_response_are_both_answered_then_one_response_create(
    realtime_server: ServerFactory,
) -> None:
    async def script(peer: Peer) -> None:
        response_id = await peer.start_response()
        call_ids = await peer.call_tools(
            [("get_your_info", '{"query": "age"}'), ("get_your_info", '{"query": "hometown"}')],
            response_id=response_id,
        )
        await peer.finish_response(response_id)
        outputs = [await peer.expect("conversation.item.create"), await peer.expect("conversation.item.create")]
        assert sorted(o["item"]["call_id"] for o in outputs) == sorted(call_ids)
        await peer.expect("response.create")
        await peer.answer_with_audio(tone_pcm16(100), "I'm 24, from Osaka.")
        await idle(peer)

    async with realtime_server(script) as server:
        session = session_for(server)
        await session.start()
        events = await collect_until(session, has(out.AssistantTranscript))
        assert await session.wait_until_idle()
        await session.close()
    assert len(of_type(events, out.ToolCallFinished)) == 2
    assert [e["type"] for e in server.peers[0].received].count("response.create") == 1


class RecordingSink:
    """An audio sink that has "played" a fixed amount of each item, as the Discord source will report."""

    def __init__(self) -> None:
        self.fed: dict[str, int] = {}
        self.cleared = 0

    def feed(self, item_id: str, pcm16: bytes) -> None:
        self.fed[item_id] = self.fed.get(item_id, 0) + len(pcm16)

    @property
    def is_playing(self) -> bool:
        return bool(self.fed) and not self.cleared

    def clear(self) -> dict[str, float]:
        self.cleared += 1
        return {item_id: 250.0 for item_id in self.fed}


async def test_speech_mid_answer_stops_the_sink_and_truncates_at_the_played_ms(realtime_server: ServerFactory) -> None:
    async def script(peer: Peer) -> None:
        response_id = await peer.start_response()
        item_id = await peer.stream_audio(response_id, tone_pcm16(1000), "A long answer")
        await peer.wait_audio_ms(20)  # the bot is talking; now someone speaks
        await peer.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "item_u"})
        truncate = await peer.expect("conversation.item.truncate")
        assert truncate == {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 250,
        }
        await peer.finish_response(response_id, status="cancelled")  # GA interrupt_response: server cancels
        await idle(peer)

    async with realtime_server(script) as server:
        sink = RecordingSink()
        session = session_for(server, sink=sink)
        await session.start()
        reader = asyncio.ensure_future(collect_until(session, has(out.ResponseFinished)))
        events: list[out.Output] = []
        while not reader.done():
            session.push_audio(bytes(960))
            await asyncio.sleep(0.01)
        events = reader.result()
        for event in of_type(events, out.AssistantAudio):
            sink.feed(event.item_id, event.pcm16)
        await session.close()
    assert sink.cleared == 1
    assert [e["type"] for e in server.peers[0].received].count("response.cancel") == 0
    assert of_type(events, out.UserSpeechStarted) and of_type(events, out.ResponseFinished)[0].status == "cancelled"


async def test_a_slow_tool_never_holds_up_audio_input(realtime_server: ServerFactory) -> None:
    release = threading.Event()
    tools = ToolRegistry()

    def slow_lookup(query: str) -> str:
        """A slow lookup.

        Args:
            query: what to look up.
        """
        release.wait(4 * UNIT_S)
        return "done"

    tools.register(slow_lookup, timeout_s=4 * UNIT_S)

    async def script(peer: Peer) -> None:
        response_id = await peer.start_response()
        await peer.call_tools([("slow_lookup", '{"query": "x"}')], response_id=response_id)
        await peer.finish_response(response_id)
        before = len(peer.audio)
        await peer.wait_audio_ms(before // 48 + 200)  # 200 ms more audio arrives while the tool runs
        release.set()
        output = await peer.expect("conversation.item.create")
        assert output["item"]["output"] == "done"
        await peer.expect("response.create")
        await peer.answer_with_audio(b"", "ok")
        await idle(peer)

    async with realtime_server(script) as server:
        session = session_for(server, tools=tools)
        await session.start()
        reader = asyncio.ensure_future(collect_until(session, has(out.AssistantTranscript)))
        while not reader.done():
            session.push_audio(bytes(960))
            await asyncio.sleep(0.005)
        await session.close()
    assert of_type(reader.result(), out.ToolCallFinished)[0].output == "done"


async def test_an_invalid_key_at_the_handshake_fails_start_once_without_leaking_it(
    realtime_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    async with realtime_server(idle) as server:
        settings, tools = persona_settings()
        session = RealtimeSession(endpoint(server, key="sk-secret-999999"), settings, tools, policy=FAST_RETRY)
        with pytest.raises(RejectedError) as failure:
            await session.start()
    assert failure.value.status == 401 and failure.value.code == "invalid_api_key"
    assert server.rejected == 1
    assert "sk-secret" not in str(failure.value) and all(
        "sk-secret" not in r.getMessage() for r in caplog.records if r.name.startswith("bot")
    )


async def test_a_server_without_the_endpoint_is_a_connection_failure(unused_tcp_port: int) -> None:
    from bot.config import RealtimeConfig
    from bot.realtime.endpoint import endpoint_for

    settings, tools = persona_settings()
    config = RealtimeConfig(provider="custom", url=f"ws://127.0.0.1:{unused_tcp_port}/v1")
    with pytest.raises(ConnectionFailed, match="cannot reach"):
        await RealtimeSession(endpoint_for(config), settings, tools).start()


async def remember_and_drop(peer: Peer) -> None:
    """First connection: one exchange, then the response in flight is cut by a dropped socket."""
    await peer.configured.wait()
    await peer.user_transcript("item_u1", "what's your hobby?")
    await peer.answer_with_audio(tone_pcm16(50), "I climb.")
    response_id = await peer.start_response()
    await peer.stream_audio(response_id, tone_pcm16(200), "cut off")  # no response.done: the socket dies
    await peer.drop()


async def test_a_dropped_connection_reconnects_replays_config_and_conversation_and_asks_again(
    realtime_server: ServerFactory,
) -> None:
    async def second(peer: Peer) -> None:
        await peer.configured.wait()
        for _ in range(3):
            await peer.expect("conversation.item.create")
        await peer.expect("response.create")  # the answer cut by the drop is asked for again
        await peer.answer_with_audio(tone_pcm16(50), "Back again.")
        await idle(peer)

    async with realtime_server([remember_and_drop, second]) as server:
        session = session_for(server)
        await session.start()
        events = await collect_until(session, lambda e: len(of_type(e, out.AssistantTranscript)) >= 3)
        await session.close()
    assert of_type(events, out.Reconnecting)[0].attempt == 1
    assert of_type(events, out.SessionReady) == [out.SessionReady(False), out.SessionReady(True)]
    replay = [e for e in server.peers[1].received if e["type"] != "input_audio_buffer.append"]
    assert replay[0]["type"] == "session.update" and replay[0]["session"]["tools"]
    texts = [(e["item"]["role"], e["item"]["content"][0]["text"]) for e in replay[1:4]]
    assert texts == [("user", "what's your hobby?"), ("assistant", "I climb."), ("assistant", "cut off")]
    assert [e["type"] for e in replay[4:]] == ["response.create"]
    assert session.reconnects == 1


async def test_a_rate_limit_error_then_close_is_retried_with_backoff(realtime_server: ServerFactory) -> None:
    async def limited(peer: Peer) -> None:
        await peer.error("rate_limit_exceeded", "Too many requests", error_type="rate_limit_error")
        await peer.connection.close()

    async def fine(peer: Peer) -> None:
        await peer.answer_with_audio(b"", "hello")
        await idle(peer)

    policy = RetryPolicy(base_delay_s=0.05, max_delay_s=0.2)
    async with realtime_server([limited, limited, fine]) as server:
        session = session_for(server, policy=policy, rand=lambda: 1.0)
        await session.start()
        events = await collect_until(session, has(out.AssistantTranscript))
        await session.close()
    assert [e.code for e in of_type(events, out.ErrorReported)] == ["rate_limit_exceeded", "rate_limit_exceeded"]
    assert [(r.attempt, r.delay_s) for r in of_type(events, out.Reconnecting)] == [(1, 0.05), (2, 0.1)]
    assert len(server.peers) == 3


async def test_a_fatal_server_error_ends_the_session_with_one_message(realtime_server: ServerFactory) -> None:
    async def broke(peer: Peer) -> None:
        await peer.configured.wait()
        await peer.error("insufficient_quota", "You exceeded your current quota", error_type="insufficient_quota")
        await idle(peer)

    async with realtime_server(broke) as server:
        session = session_for(server)
        await session.start()
        events = await collect_until(session, has(out.SessionEnded))
        await session.close()
    [ended] = of_type(events, out.SessionEnded)
    assert ended.error is not None and "exceeded your current quota" in ended.error
    assert len(server.peers) == 1 and not of_type(events, out.Reconnecting)


async def test_malformed_and_unknown_events_on_the_wire_do_not_disturb_the_session(
    realtime_server: ServerFactory,
) -> None:
    async def noisy(peer: Peer) -> None:
        await peer.send_raw("{this is not json")
        await peer.send_raw(json.dumps({"type": "response.output_audio.delta", "item_id": "x"}))
        await peer.send_raw(json.dumps({"type": "vendor.special.event", "payload": [1, 2]}))
        await peer.answer_with_audio(tone_pcm16(40), "still here")
        await idle(peer)

    async with realtime_server(noisy) as server:
        session = session_for(server)
        await session.start()
        events = await collect_until(session, has(out.AssistantTranscript))
        stats = session.protocol.stats
        await session.close()
    assert of_type(events, out.AssistantTranscript)[0].text == "still here"
    assert (stats.malformed_events, stats.unknown_events) == (2, 1)
    assert len(server.peers) == 1


async def test_the_session_is_renewed_before_the_providers_limit(realtime_server: ServerFactory) -> None:
    async def chat(peer: Peer) -> None:
        await peer.user_transcript("item_u", "remember me")
        await idle(peer)

    async with realtime_server([chat, idle]) as server:
        settings, tools = persona_settings()
        base = endpoint(server)
        short = type(base)(base.url, base.dialect, 0.4, base.headers)  # a 0.4 s "maximum session"
        session = RealtimeSession(short, settings, tools, policy=RetryPolicy(renew_margin_s=0.2))
        await session.start()
        events = await collect_until(session, has(out.SessionReady, 2))
        await session.close()
    assert of_type(events, out.Reconnecting)[0].reason == "session renewal"
    carried = [e for e in server.peers[1].received if e["type"] == "conversation.item.create"]
    assert carried[0]["item"]["content"][0]["text"] == "remember me"


async def test_close_resolves_waiters_and_ends_the_event_stream(realtime_server: ServerFactory) -> None:
    async def calls_and_waits(peer: Peer) -> None:
        response_id = await peer.start_response()
        await peer.call_tools([("get_your_info", '{"query": "age"}')], response_id=response_id)
        await idle(peer)  # never finishes the response

    async with realtime_server(calls_and_waits) as server:
        session = session_for(server)
        await session.start()
        await collect_until(session, has(out.ToolCallFinished))
        waiter = asyncio.ensure_future(session.wait_until_idle())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        started = time.monotonic()
        await session.close()
        assert await asyncio.wait_for(waiter, UNIT_S) is False
        assert time.monotonic() - started < 2 * UNIT_S
        events = await collect_until(session, has(out.SessionEnded))
        await session.close()  # idempotent
    assert events[-1] == out.SessionEnded(None)
    assert server.peers


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [(404, RejectedError, "does not know this model"), (503, ConnectionFailed, "HTTP 503")],
)
async def test_handshake_statuses_fail_start_with_a_clear_error(
    realtime_server: ServerFactory, status: int, error: type[Exception], text: str
) -> None:
    async with realtime_server(idle, handshake_status=status) as server:
        with pytest.raises(error, match=text):
            await session_for(server).start()


async def test_refused_reconnects_back_off_then_succeed(realtime_server: ServerFactory) -> None:
    async def drop_and_refuse(peer: Peer) -> None:
        await peer.configured.wait()
        peer.server.upcoming_statuses = [503, 429]
        await peer.drop()

    async def fine(peer: Peer) -> None:
        await peer.configured.wait()
        await peer.answer_with_audio(b"", "back")
        await idle(peer)

    async with realtime_server([drop_and_refuse, fine]) as server:
        session = session_for(server, policy=RetryPolicy(base_delay_s=0.02, max_delay_s=1.0), rand=lambda: 0.0)
        await session.start()
        events = await collect_until(session, has(out.AssistantTranscript))
        await session.close()
    assert [(r.attempt, r.delay_s) for r in of_type(events, out.Reconnecting)] == [(1, 0.01), (2, 0.02), (3, 0.04)]
    assert server.rejected == 2 and session.reconnects == 1


async def test_a_key_refused_on_reconnect_stops_for_good(realtime_server: ServerFactory) -> None:
    async def drop_and_revoke(peer: Peer) -> None:
        await peer.configured.wait()
        peer.server.upcoming_statuses = [401]
        await peer.drop()

    async with realtime_server(drop_and_revoke) as server:
        session = session_for(server)
        await session.start()
        events = await collect_until(session, has(out.SessionEnded))
        await session.close()
    [fatal] = [e for e in of_type(events, out.ErrorReported) if e.fatal]
    assert "rejected the API key (HTTP 401)" in fatal.message
    assert of_type(events, out.SessionEnded)[0].error == fatal.message and server.rejected == 1
