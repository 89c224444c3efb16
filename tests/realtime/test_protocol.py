"""The sans-I/O protocol, fed JSON strings synchronously: no sockets, no event loop."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bot.realtime import outputs as out
from bot.realtime.carry import CarriedCall, RecentAudio, TurnCarry
from bot.realtime.client_events import SessionSettings
from bot.realtime.events import GA_TO_BETA_NAMES
from bot.realtime.protocol import (
    RESPONSE_CREATED_TIMEOUT_S,
    RESPONSE_STALLED_TIMEOUT_S,
    RealtimeProtocol,
    ResponseState,
)
from bot.realtime.server_text import MAX_SERVER_TEXT_CHARS
from tests.realtime.helpers import CACHED_AUDIO_USAGE
from tests.realtime.schema import schema_problems

SETTINGS = SessionSettings(instructions="Be brief.")


class Wire:
    """A protocol and the events it sent, decoded; every sent event is checked against the openai schema."""

    def __init__(self, dialect: str = "ga", settings: SessionSettings = SETTINGS, **options: Any) -> None:
        self.dialect = dialect
        self.proto = RealtimeProtocol(settings, "beta" if dialect == "beta" else "ga", **options)
        self.sent: list[dict[str, Any]] = []

    def feed(self, event: dict[str, Any]) -> list[out.Output]:
        if self.dialect == "beta":
            event = {**event, "type": GA_TO_BETA_NAMES.get(event["type"], event["type"])}
        return self.proto.receive_text(json.dumps(event))

    def drain(self) -> list[dict[str, Any]]:
        new = [json.loads(text) for text in self.proto.data_to_send()]
        for event in new:
            assert schema_problems(event, self.dialect) == []
        self.sent += new
        return new

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.drain()]


def created(response_id: str) -> dict[str, Any]:
    return {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}


def done(response_id: str, status: str = "completed", usage: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"id": response_id, "status": status}
    if usage is not None:
        response["usage"] = usage
    return {"type": "response.done", "response": response}


def call(response_id: str, call_id: str, name: str = "get_your_info", arguments: str = "{}") -> dict[str, Any]:
    return {
        "type": "response.function_call_arguments.done",
        "response_id": response_id,
        "item_id": f"item_{call_id}",
        "output_index": 0,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def audio(response_id: str, item_id: str, pcm16: bytes) -> dict[str, Any]:
    return {
        "type": "response.output_audio.delta",
        "response_id": response_id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(pcm16).decode(),
    }


def test_start_sends_the_session_update_then_the_carried_over_conversation() -> None:
    wire = Wire(history=[("user", "hi"), ("assistant", "hello there"), ("user", "  ")])
    wire.proto.start()
    wire.proto.start()  # idempotent
    sent = wire.drain()
    assert [e["type"] for e in sent] == ["session.update", "conversation.item.create", "conversation.item.create"]
    assert sent[2]["item"]["content"] == [{"type": "output_text", "text": "hello there"}]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_one_tool_call_sends_its_output_and_one_response_create_after_the_response_is_done(dialect: str) -> None:
    wire = Wire(dialect)
    wire.feed(created("r1"))
    [request] = wire.feed(call("r1", "c1", arguments='{"query": "age"}'))
    assert request == out.ToolCallRequested("c1", "get_your_info", '{"query": "age"}')
    assert wire.proto.tool_output("c1", '{"age": 24}')
    assert wire.kinds() == ["conversation.item.create"]  # no response.create while r1 is active
    assert wire.sent[-1]["item"] == {"type": "function_call_output", "call_id": "c1", "output": '{"age": 24}'}
    wire.feed(done("r1"))
    assert wire.kinds() == ["response.create"]
    assert wire.proto.state is ResponseState.REQUESTED
    wire.feed(created("r2"))
    wire.feed(done("r2"))
    assert wire.kinds() == [] and not wire.proto.busy


def test_the_follow_up_waits_for_a_slow_tool_that_finishes_after_the_response() -> None:
    wire = Wire()
    wire.feed(created("r1"))
    wire.feed(call("r1", "c1"))
    wire.feed(done("r1"))
    assert wire.kinds() == [] and wire.proto.busy
    wire.proto.tool_output("c1", "{}")
    assert wire.kinds() == ["conversation.item.create", "response.create"]


def test_two_parallel_calls_get_both_outputs_then_a_single_response_create() -> None:
    wire = Wire()
    wire.feed(created("r1"))
    wire.feed(call("r1", "c1"))
    wire.feed(call("r1", "c2"))
    wire.feed(call("r1", "c2"))  # a duplicate done event does not start the tool twice
    wire.feed(done("r1"))
    wire.proto.tool_output("c2", "two")
    assert wire.kinds() == ["conversation.item.create"]
    assert not wire.proto.tool_output("c2", "again")  # unknown now: dropped
    wire.proto.tool_output("c1", "one")
    assert wire.kinds() == ["conversation.item.create", "response.create"]
    assert [e["item"]["call_id"] for e in wire.sent if e["type"] == "conversation.item.create"] == ["c2", "c1"]


def test_a_response_the_server_starts_meanwhile_delays_the_follow_up_until_it_is_done() -> None:
    wire = Wire()
    wire.feed(created("r1"))
    wire.feed(call("r1", "c1"))
    wire.feed(done("r1"))
    wire.feed(created("r2"))  # server VAD answered someone else before our tool returned
    wire.proto.tool_output("c1", "{}")
    assert wire.kinds() == ["conversation.item.create"]
    wire.feed(done("r2"))
    assert wire.kinds() == ["response.create"]


def test_a_cancelled_response_with_a_call_gets_the_output_but_no_follow_up() -> None:
    wire = Wire()
    wire.feed(created("r1"))
    wire.feed(call("r1", "c1"))
    wire.feed(done("r1", status="cancelled"))
    wire.proto.tool_output("c1", "{}")
    assert wire.kinds() == ["conversation.item.create"] and not wire.proto.busy


def test_active_response_error_retries_the_request_once_the_other_response_is_done() -> None:
    wire = Wire()
    wire.proto.send_text("hello?")
    assert wire.kinds() == ["conversation.item.create", "response.create"]
    outputs = wire.feed(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "conversation_already_has_active_response",
                "message": "busy",
                "event_id": None,
            },
        }
    )
    assert outputs == []  # handled, not reported as a failure
    wire.feed(created("r0"))
    wire.feed(done("r0"))
    assert wire.kinds() == ["response.create"]


def test_send_text_while_a_response_is_active_asks_only_afterwards() -> None:
    wire = Wire()
    wire.feed(created("r1"))
    wire.proto.send_text("and you?")
    assert wire.kinds() == ["conversation.item.create"]
    wire.feed(done("r1"))
    assert wire.kinds() == ["response.create"]


def test_barge_in_truncates_at_the_played_ms_clamped_to_the_audio_received() -> None:
    wire = Wire(settings=SessionSettings(instructions="x", interrupt_response=False))
    wire.feed(created("r1"))
    outputs = wire.feed(audio("r1", "a1", bytes(48 * 300)))  # 300 ms received
    assert outputs == [out.AssistantAudio("a1", bytes(48 * 300))]
    wire.feed({"type": "input_audio_buffer.speech_started", "item_id": "u1", "audio_start_ms": 10})
    wire.proto.interrupt({"a1": 120.7, "unknown": 50.0})
    sent = wire.drain()
    assert [e["type"] for e in sent] == ["response.cancel", "conversation.item.truncate"]
    assert sent[1] == {"type": "conversation.item.truncate", "item_id": "a1", "content_index": 0, "audio_end_ms": 120}
    assert wire.feed(audio("r1", "a1", bytes(480))) == []  # late audio of the interrupted item is not played
    wire.proto.interrupt({"a1": 10_000.0})
    assert wire.drain()[-1]["audio_end_ms"] == 310  # never past what was received


def test_with_server_interrupt_response_the_bot_truncates_but_does_not_cancel() -> None:
    wire = Wire()  # GA default: turn_detection.interrupt_response = true
    wire.feed(created("r1"))
    wire.feed(audio("r1", "a1", bytes(48 * 100)))
    wire.feed({"type": "input_audio_buffer.speech_started", "item_id": "u1", "audio_start_ms": 10})
    wire.proto.interrupt({"a1": 40.0})
    assert wire.kinds() == ["conversation.item.truncate"]


def test_an_item_heard_to_the_end_is_not_truncated() -> None:
    wire = Wire()
    wire.feed(created("r1"))
    wire.feed(audio("r1", "a1", bytes(48 * 100)))
    wire.feed(
        {
            "type": "response.output_audio.done",
            "response_id": "r1",
            "item_id": "a1",
            "output_index": 0,
            "content_index": 0,
        }
    )
    wire.feed(done("r1"))
    wire.proto.interrupt({"a1": 100.0})
    assert wire.kinds() == []


def test_malformed_and_unknown_events_are_counted_and_never_fatal() -> None:
    wire = Wire()
    assert wire.proto.receive_text("{not json") == []
    assert wire.proto.receive_text("[1, 2]") == []
    assert wire.proto.receive_text(json.dumps({"type": "response.created"})) == []  # no response object
    assert (
        wire.proto.receive_text(
            json.dumps({"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": "%%%"})
        )
        == []
    )
    assert wire.proto.receive_text(json.dumps({"type": "brand.new.event", "x": 1})) == []
    assert wire.proto.stats.malformed_events == 4 and wire.proto.stats.unknown_events == 1
    wire.feed(created("r1"))
    assert wire.proto.state is ResponseState.ACTIVE


def test_transcripts_are_reported_and_remembered_for_a_reconnect() -> None:
    wire = Wire("beta")
    user = wire.feed(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "hi Aiko",
        }
    )
    bot = wire.feed(
        {
            "type": "response.output_audio_transcript.done",
            "response_id": "r",
            "item_id": "a1",
            "output_index": 0,
            "content_index": 0,
            "transcript": "hey!",
        }
    )
    assert user == [out.UserTranscript("u1", "hi Aiko")] and bot == [out.AssistantTranscript("a1", "hey!")]
    assert wire.proto.history == [("user", "hi Aiko"), ("assistant", "hey!")]


def test_usage_is_summed_over_responses_with_each_cached_modality_at_its_own_rate() -> None:
    wire = Wire(model="gpt-realtime-2")
    usage = {
        "input_tokens": 1_000_000,
        "output_tokens": 1_000_000,
        "input_token_details": {
            "text_tokens": 500_000,
            "audio_tokens": 500_000,
            "cached_tokens": 300_000,
            "cached_tokens_details": {"text_tokens": 100_000, "audio_tokens": 200_000},
        },
        "output_token_details": {"text_tokens": 250_000, "audio_tokens": 750_000},
    }
    wire.feed(created("r1"))
    first = wire.feed(done("r1", usage=usage))
    wire.feed(created("r2"))
    second = wire.feed(done("r2", usage=usage))
    report = next(o for o in second if isinstance(o, out.UsageReport))
    assert next(o for o in first if isinstance(o, out.UsageReport)).total.input_tokens == 1_000_000
    assert report.total.input_tokens == 2_000_000 and report.total.responses == 2
    # per response (gpt-realtime-2): 400k text in $1.60 + 100k cached text $0.04 + 300k audio in $9.60
    # + 200k cached audio $0.08 + 250k text out $6 + 750k audio out $48
    per_response = 1.6 + 0.04 + 9.6 + 0.08 + 6 + 48
    assert report.part_cost_usd == pytest.approx(per_response)
    assert report.total_cost_usd == pytest.approx(2 * per_response)


def test_the_issues_recorded_usage_with_cached_audio_costs_what_openai_bills() -> None:
    """The input side of a recorded gpt-realtime response.done (text 59, audio 73, cached 64 of which audio 64);
    the output side (18 text, 152 audio) is chosen so the old sum gives the $0.0124 the issue reports."""
    usage = CACHED_AUDIO_USAGE
    wire = Wire(model="gpt-realtime-2025-08-28")  # a dated snapshot takes its family's prices
    wire.feed(created("r1"))
    [report] = [o for o in wire.feed(done("r1", usage=usage)) if isinstance(o, out.UsageReport)]
    assert f"{report.total_cost_usd:.4f}" == "0.0106"
    old_formula = (max(59 - 64, 0) * 4 + 73 * 32 + 64 * 0.4 + 18 * 16 + 152 * 64) / 1e6
    assert f"{old_formula:.4f}" == "0.0124"


def test_an_unknown_model_counts_tokens_but_its_cost_is_unknown_until_the_server_names_a_known_one() -> None:
    wire = Wire(model="my-azure-deployment")
    wire.feed(created("r1"))
    [report] = [o for o in wire.feed(done("r1", usage={"input_tokens": 10})) if isinstance(o, out.UsageReport)]
    assert report.total.input_tokens == 10 and report.total_cost_usd is None and report.part_cost_usd is None
    assert wire.proto.usage_summary().endswith("cost unknown")
    wire.feed({"type": "session.updated", "session": {"model": "gpt-realtime-1.5"}})
    assert wire.proto.model == "gpt-realtime-1.5" and wire.proto.usage_summary().startswith("10 input tokens")
    assert "about $0.0000" in wire.proto.usage_summary()


@pytest.mark.parametrize(
    ("model", "usage", "cost"),
    [
        ("gpt-transcribe", {"type": "duration", "seconds": 120}, 2 * 0.0045),
        ("gpt-4o-transcribe", {"type": "tokens", "input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100,
                               "input_token_details": {"audio_tokens": 900, "text_tokens": 100}},
         (100 * 2.5 + 900 * 6 + 100 * 10) / 1e6),
        ("some-new-transcriber", {"type": "duration", "seconds": 60}, None),
    ],
)  # fmt: skip
def test_transcription_usage_is_counted_at_the_transcription_models_price(
    model: str, usage: dict[str, Any], cost: float | None
) -> None:
    wire = Wire(settings=SessionSettings(instructions="x", transcription_model=model), model="gpt-realtime-1.5")
    outputs = wire.feed(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "hello",
            "usage": usage,
        }
    )
    [report] = [o for o in outputs if isinstance(o, out.UsageReport)]
    assert report.total.transcriptions == 1
    assert report.total_cost_usd == (None if cost is None else pytest.approx(cost))


def test_fatal_server_errors_are_flagged() -> None:
    wire = Wire()
    [fatal] = wire.feed(
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "code": "insufficient_quota", "message": "no money"},
        }
    )
    [other] = wire.feed({"type": "error", "error": {"type": "server_error", "code": None, "message": "oops"}})
    assert fatal == out.ErrorReported("insufficient_quota", "no money", fatal=True)
    assert other == out.ErrorReported(None, "oops", fatal=False)
    assert wire.feed({"type": "error", "error": {"code": "response_cancel_not_active", "message": "x"}}) == []


def test_audio_is_split_below_the_append_limit_and_must_be_whole_samples() -> None:
    wire = Wire()
    wire.proto.push_audio(bytes(960))
    assert wire.kinds() == ["input_audio_buffer.append"]
    with pytest.raises(ValueError):
        wire.proto.push_audio(b"\x00")


@pytest.mark.parametrize("debug_wire", [False, True])
def test_an_append_is_the_same_text_json_would_write(debug_wire: bool) -> None:
    """Appends skip ``json.dumps`` (50 a second per speaking room): the text is exactly what it would write."""
    wire = Wire(debug_wire=debug_wire)
    pcm16 = bytes(range(256)) * 4
    wire.proto.push_audio(pcm16)
    [text] = wire.proto.data_to_send()
    event = {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm16).decode("ascii")}
    assert text == json.dumps(event, separators=(",", ":"))
    assert schema_problems(json.loads(text), "ga") == []


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_an_unanswered_request_is_sent_once_more_then_given_up_at_the_named_bound() -> None:
    clock = Clock()
    wire = Wire(now=clock)
    wire.proto.send_text("hi")
    assert wire.kinds() == ["conversation.item.create", "response.create"]
    clock.now_s = RESPONSE_CREATED_TIMEOUT_S - 0.1
    assert wire.proto.check_timers() == [] and wire.kinds() == []
    clock.now_s = RESPONSE_CREATED_TIMEOUT_S
    assert wire.proto.check_timers() == [] and wire.kinds() == ["response.create"]
    clock.now_s = 2 * RESPONSE_CREATED_TIMEOUT_S
    assert wire.proto.check_timers() == [out.AnswerFailed("no answer started within 10 s")]
    assert wire.kinds() == [] and wire.proto.state is ResponseState.IDLE and not wire.proto.answer_owed


def created_for(request: dict[str, Any], response_id: str) -> dict[str, Any]:
    """``response.created`` answering the bot's ``request``, its metadata echoed as the API does."""
    event = created(response_id)
    event["response"]["metadata"] = request["response"]["metadata"]
    return event


def refused(request: dict[str, Any]) -> dict[str, Any]:
    """The API's error for a ``response.create`` sent while a response is active, quoting its event id."""
    return {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "conversation_already_has_active_response",
            "message": "Conversation already has an active response in progress",
            "event_id": request["event_id"],
        },
    }


def slow_server_asked_twice() -> tuple[Wire, Clock, dict[str, Any], dict[str, Any]]:
    """The bot asks, hears nothing for the bound, and asks again: the two requests."""
    clock = Clock()
    wire = Wire(now=clock)
    wire.proto.send_text("hi")
    [_, first] = wire.drain()
    clock.now_s = RESPONSE_CREATED_TIMEOUT_S
    wire.proto.check_timers()
    [second] = wire.drain()
    assert first["type"] == second["type"] == "response.create" and first["event_id"] != second["event_id"]
    return wire, clock, first, second


def test_a_retried_request_the_server_refuses_while_the_first_one_plays_asks_for_nothing_more() -> None:
    wire, _, first, second = slow_server_asked_twice()
    wire.feed(created_for(first, "r1"))
    assert wire.feed(refused(second)) == []  # expected: not reported, and not a reason to ask again
    assert wire.feed(audio("r1", "a1", bytes(96))) == [out.AssistantAudio("a1", bytes(96))]
    wire.feed(done("r1"))
    assert wire.drain() == [] and not wire.proto.busy and not wire.proto.answer_owed


def test_a_retried_request_the_server_answers_after_the_first_answer_is_cancelled_and_never_heard() -> None:
    wire, _, first, second = slow_server_asked_twice()
    wire.feed(created_for(first, "r1"))
    wire.feed(audio("r1", "a1", bytes(96)))
    wire.feed(done("r1"))
    assert wire.feed(created_for(second, "r2")) == []
    assert wire.drain() == [{"type": "response.cancel", "response_id": "r2"}]
    item = {"type": "message", "role": "assistant", "id": "a2", "content": []}
    surplus = [
        {"type": "response.output_item.added", "response_id": "r2", "output_index": 0, "item": item},
        audio("r2", "a2", bytes(96)),
        call("r2", "c2"),
        {
            "type": "response.output_audio_transcript.done",
            "response_id": "r2",
            "item_id": "a2",
            "output_index": 0,
            "content_index": 0,
            "transcript": "hi again!",
        },
    ]
    assert [wire.feed(event) for event in surplus] == [[], [], [], []]  # not heard, not run, not shown
    finished = wire.feed(done("r2", status="cancelled", usage={"input_tokens": 10, "output_tokens": 2}))
    assert [type(o) for o in finished] == [out.UsageReport]  # what it cost still counts
    assert wire.drain() == [] and not wire.proto.busy and wire.proto.state is ResponseState.IDLE
    assert ("assistant", "hi again!") not in wire.proto.history


def test_a_request_answered_only_after_it_was_given_up_is_cancelled() -> None:
    wire, clock, first, second = slow_server_asked_twice()
    clock.now_s = 2 * RESPONSE_CREATED_TIMEOUT_S
    assert [type(o) for o in wire.proto.check_timers()] == [out.AnswerFailed]  # the user was told
    assert wire.feed(created_for(second, "r1")) == [] and wire.feed(audio("r1", "a1", bytes(96))) == []
    assert wire.drain() == [{"type": "response.cancel", "response_id": "r1"}]
    assert wire.feed(refused(first)) == []


def test_each_request_of_a_tool_turn_is_answered_once() -> None:
    """Naming requests changes nothing for requests answered in time: the tool flow's follow-up is heard."""
    wire = Wire()
    wire.proto.request_response()
    [request] = wire.drain()
    wire.feed(created_for(request, "r1"))
    [requested] = wire.feed(call("r1", "c1"))
    assert isinstance(requested, out.ToolCallRequested)
    wire.feed(done("r1"))
    wire.proto.tool_output("c1", '{"name": "Aiko"}')
    [output, follow_up] = wire.drain()
    assert output["type"] == "conversation.item.create" and follow_up["type"] == "response.create"
    assert follow_up["event_id"] != request["event_id"]
    wire.feed(created_for(follow_up, "r2"))
    assert wire.feed(audio("r2", "a2", bytes(96))) == [out.AssistantAudio("a2", bytes(96))]


def test_a_stalled_response_is_cancelled_and_given_up() -> None:
    clock = Clock()
    wire = Wire(now=clock)
    wire.proto.request_response()
    wire.feed(created("r1"))
    wire.drain()
    clock.now_s = RESPONSE_STALLED_TIMEOUT_S - 1
    wire.feed(audio("r1", "a1", bytes(96)))  # progress resets the bound
    clock.now_s = 2 * RESPONSE_STALLED_TIMEOUT_S - 2
    assert wire.proto.check_timers() == []
    clock.now_s = 2 * RESPONSE_STALLED_TIMEOUT_S
    [failed] = wire.proto.check_timers()
    assert isinstance(failed, out.AnswerFailed) and wire.drain() == [{"type": "response.cancel", "response_id": "r1"}]
    assert not wire.proto.busy


def test_a_turn_cut_before_its_transcript_is_carried_as_audio_with_its_label() -> None:
    wire = Wire()
    speech = bytes(range(256)) * 48 * 3  # 768 ms of distinct bytes
    wire.proto.push_audio(bytes(48 * 100) + speech[: 48 * 500] + bytes(48 * 300))
    wire.feed({"type": "input_audio_buffer.speech_started", "item_id": "u1", "audio_start_ms": 100})
    wire.feed({"type": "input_audio_buffer.speech_stopped", "item_id": "u1", "audio_end_ms": 600})
    wire.feed({"type": "input_audio_buffer.committed", "item_id": "u1", "previous_item_id": None})
    wire.proto.label_turn(None, "Alice")
    wire.proto.request_response()
    carry = wire.proto.carry()
    assert carry.answer_owed and carry.label == "Alice" and carry.user_audio == speech[: 48 * 500]

    resumed = Wire(carry=carry, history=[("user", "earlier")])
    resumed.proto.start()
    sent = resumed.drain()
    assert [e["type"] for e in sent] == ["session.update", *["conversation.item.create"] * 3, "response.create"]
    assert sent[2]["item"]["content"][0]["text"] == "[Alice is speaking]"
    assert base64.b64decode(sent[3]["item"]["content"][0]["audio"]) == speech[: 48 * 500]
    assert resumed.proto.carry().user_audio == carry.user_audio  # a second drop still carries it


def test_a_transcribed_and_answered_turn_carries_nothing() -> None:
    wire = Wire()
    wire.feed({"type": "input_audio_buffer.committed", "item_id": "u1", "previous_item_id": None})
    wire.feed(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "hello",
        }
    )
    wire.proto.request_response()
    assert wire.proto.carry().answer_owed and wire.proto.carry().user_audio == b""  # the words are in the history
    wire.feed(created("r1"))
    wire.feed(done("r1"))
    assert wire.proto.carry() == TurnCarry()


def test_json_nested_past_the_recursion_limit_is_one_malformed_event() -> None:
    wire = Wire()
    assert wire.proto.receive_text('{"type": "error", "error": ' + "[" * 100_000 + "]" * 100_000 + "}") == []
    assert wire.proto.stats.malformed_events == 1


def test_server_text_is_redacted_and_truncated() -> None:
    wire = Wire(secrets=["sk-abcdef123456"])
    [error] = wire.feed({"type": "error", "error": {"code": "x", "message": "key sk-abcdef123456 " + "y" * 1000}})
    assert isinstance(error, out.ErrorReported) and error.message.startswith("key *** yyy")
    assert len(error.message) == MAX_SERVER_TEXT_CHARS


def test_a_reset_forgets_the_unanswered_turn() -> None:
    wire = Wire()
    wire.feed(created("r1"))
    wire.feed(call("r1", "c1"))
    assert wire.proto.carry().answer_owed
    wire.proto.forget_turn()
    assert wire.proto.carry() == TurnCarry()


def test_recent_audio_keeps_the_last_30_s_addressed_by_session_ms() -> None:
    recent = RecentAudio()
    second = bytes(48_000)  # 1 s of 24 kHz pcm16
    for n in range(40):
        recent.append(bytes([n]) * len(second))
    assert recent.between(39_000, 40_000) == bytes([39]) * len(second)
    assert recent.between(5_000, 6_000) == b""  # long gone
    kept = recent.between(0, 40_000)
    assert 30 * len(second) <= len(kept) <= 35 * len(second) and kept.endswith(bytes([39]))


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_resumed_turn_is_valid_in_both_dialects_and_waits_for_a_running_tool(dialect: str) -> None:
    calls = (CarriedCall("c1", "get_your_info", '{"query": "age"}', "24"), CarriedCall("c2", "get_your_info", "{}"))
    wire = Wire(dialect, carry=TurnCarry(True, calls, bytes(4800), "Bob"))
    wire.proto.start()
    sent = wire.drain()  # every event checked against the dialect's schema
    kinds = [(e["type"], e.get("item", {}).get("type")) for e in sent]
    assert kinds == [
        ("session.update", None),
        ("conversation.item.create", "message"),  # [Bob is speaking]
        ("conversation.item.create", "message"),  # his audio
        ("conversation.item.create", "function_call"),
        ("conversation.item.create", "function_call_output"),
        ("conversation.item.create", "function_call"),
    ]  # no response.create while c2 still runs
    assert wire.proto.tool_output("c2", "{}")
    assert wire.kinds() == ["conversation.item.create", "response.create"]
