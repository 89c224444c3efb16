"""The sans-I/O Realtime session: JSON text in, typed outputs and JSON text to send out. No sockets, no asyncio.

One :class:`RealtimeProtocol` lives for one WebSocket connection. The driver feeds it every received message with
:meth:`~RealtimeProtocol.receive_text`, sends whatever :meth:`~RealtimeProtocol.data_to_send` returns, calls
:meth:`~RealtimeProtocol.check_timers` now and then, and calls the command methods (:meth:`push_audio`,
:meth:`tool_output`, :meth:`interrupt`, ...) for the application.

The response state machine (``IDLE -> REQUESTED -> ACTIVE -> IDLE``) guarantees the rule of the function-calling
flow: ``response.create`` is never sent while a response is active, and after a response that called tools exactly
one ``response.create`` follows, once that response is done and every call has its output. No state waits longer
than its bound (:class:`Bounds`). A turn left unanswered when the connection drops is handed to the next
connection's protocol (:meth:`carry`), which re-creates it and asks for the answer again.

A request sent again after its timeout may have been only slow: the server then answers both. Each
``response.create`` is named (its ``event_id`` and the response ``metadata``, see
:func:`~bot.realtime.client_events.response_create`), so once one of them is answered (or the answer is given up)
the others are *surplus*: the server's "already active" error about one is expected, and a response created for one
is cancelled at once and never heard, shown or run (its tool calls included). A server that does not echo the
metadata gets the old behaviour.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.realtime import client_events as ce
from bot.realtime import events as ev
from bot.realtime import outputs as out
from bot.realtime.carry import CarriedCall, RecentAudio, TurnCarry
from bot.realtime.client_events import Dialect, Role, SessionSettings
from bot.realtime.errors import is_fatal_error
from bot.realtime.server_text import shown, status_reason
from bot.realtime.usage import Usage, prices_for, transcription_prices_for
from bot.secret import redact

_log = logging.getLogger(__name__)

#: 24 kHz mono pcm16: bytes per millisecond.
PCM16_BYTES_PER_MS = 48
#: Recent assistant audio items whose received length is remembered (to clamp truncation).
AUDIO_ITEMS_KEPT = 32
#: Error codes that are expected in a race and harmless (logged at debug only).
BENIGN_ERROR_CODES = frozenset({"response_cancel_not_active"})
ACTIVE_RESPONSE_CODE = "conversation_already_has_active_response"

#: A ``response.create`` without ``response.created`` for this long is sent once more, then given up.
RESPONSE_CREATED_TIMEOUT_S = 10.0
#: An active response with no server event at all for this long is cancelled and given up.
RESPONSE_STALLED_TIMEOUT_S = 30.0
#: A ``session.update`` after the first one, unconfirmed for this long, is no longer waited for.
SESSION_UPDATED_TIMEOUT_S = 10.0
#: How often ``response.create`` is re-sent after its first timeout before the answer is given up.
RESPONSE_CREATE_RETRIES = 1
#: Surplus requests and their cancelled responses remembered (a server that never answers them cannot grow them).
SURPLUS_KEPT = 32


@dataclass(frozen=True, slots=True)
class Bounds:
    """The longest each protocol state may wait (tests shrink them; the bot uses the named defaults)."""

    response_created_s: float = RESPONSE_CREATED_TIMEOUT_S
    response_stalled_s: float = RESPONSE_STALLED_TIMEOUT_S
    session_updated_s: float = SESSION_UPDATED_TIMEOUT_S
    response_create_retries: int = RESPONSE_CREATE_RETRIES

    @property
    def shortest_s(self) -> float:
        return min(self.response_created_s, self.response_stalled_s, self.session_updated_s)


class ResponseState(enum.Enum):
    IDLE = "idle"
    REQUESTED = "requested"  # we sent response.create; response.created not seen yet
    ACTIVE = "active"


@dataclass(slots=True)
class ResponseTrack:
    """One model response: its output items, audio items and function calls."""

    response_id: str
    output_item_ids: list[str] = field(default_factory=list)
    audio_item_ids: list[str] = field(default_factory=list)
    call_ids: list[str] = field(default_factory=list)
    status: str | None = None


@dataclass(slots=True)
class _Call:
    name: str
    arguments: str
    output: str | None = None


@dataclass(slots=True)
class _UserTurn:
    """The user's last committed turn, until its transcript arrives (then its words are in the history)."""

    item_id: str
    start_ms: int
    end_ms: int
    label: str | None = None


@dataclass(slots=True)
class _AudioItem:
    response_id: str
    content_index: int
    received_bytes: int = 0
    done: bool = False


@dataclass(slots=True)
class ProtocolStats:
    malformed_events: int = 0
    unknown_events: int = 0
    server_errors: int = 0


class RealtimeProtocol:
    """The session state for one connection. Pure: call it from one thread (the event loop)."""

    def __init__(
        self,
        settings: SessionSettings,
        dialect: Dialect,
        *,
        history: Sequence[tuple[Role, str]] = (),
        max_history_turns: int = 20,
        model: str | None = None,
        usage: Usage | None = None,
        debug_wire: bool = False,
        secrets: Iterable[str] = (),
        carry: TurnCarry | None = None,
        bounds: Bounds | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.dialect: Dialect = dialect
        self._max_history = max_history_turns
        self.history: list[tuple[Role, str]] = list(history)[-max_history_turns:]
        self.model = model
        self.usage = usage if usage is not None else Usage()
        self._debug_wire = debug_wire
        self._secrets = tuple(s for s in secrets if len(s) >= 4)
        self._carried = carry
        self.bounds = bounds or Bounds()
        self._now = now
        self.stats = ProtocolStats()
        self._outgoing: list[str] = []
        self._state = ResponseState.IDLE
        self._active: ResponseTrack | None = None
        self._responses: dict[str, ResponseTrack] = {}
        self._pending_calls: dict[str, str] = {}  # call_id -> response_id
        self._calls: dict[str, _Call] = {}  # the unanswered turn's tool calls, for a carry
        self._follow_up = False
        self._answer_owed = False
        self._requested_at_s = 0.0
        self._create_attempts = 0
        self._requests_sent = 0
        self._wanted_requests: dict[str, None] = {}  # sent for the answer now owed, no outcome seen yet
        self._surplus_requests: dict[str, None] = {}  # sent, but their answer is no longer wanted
        self._discarded_responses: dict[str, None] = {}  # created for a surplus request: cancelled, never heard
        self._discarded_items: dict[str, None] = {}
        self._last_server_event_s = 0.0
        self._audio: dict[str, _AudioItem] = {}
        self._muted_items: set[str] = set()
        self._speech_active = False
        self._speech_start_ms = 0
        self._speech_end_ms = 0
        self._user_turn: _UserTurn | None = None
        self._carried_user: tuple[bytes, str | None] | None = None
        self._recent_audio = RecentAudio()
        self._started = False
        self._ready = False
        self._confirmed = settings
        self._updates = 0
        self._pending_update: tuple[str, SessionSettings, float] | None = None

    # -- state -------------------------------------------------------------------------------------------------

    @property
    def state(self) -> ResponseState:
        return self._state

    def _set_state(self, state: ResponseState, why: str) -> None:
        if state is not self._state:
            _log.debug("response state %s -> %s (%s)", self._state.value, state.value, why)
            self._state = state
            if state is ResponseState.REQUESTED:
                self._requested_at_s = self._now()
            elif state is ResponseState.ACTIVE:
                self._last_server_event_s = self._now()

    @property
    def started(self) -> bool:
        """:meth:`start` ran: the protocol belongs to a connection that was opened."""
        return self._started

    @property
    def ready(self) -> bool:
        """The server confirmed the configuration (``session.updated``)."""
        return self._ready

    @property
    def busy(self) -> bool:
        """A response is requested or active, a tool call awaits its output, or a follow-up is due."""
        return self._state is not ResponseState.IDLE or bool(self._pending_calls) or self._follow_up

    @property
    def answer_owed(self) -> bool:
        """The user's turn is still waiting for its answer."""
        return self._answer_owed

    @property
    def pending_call_ids(self) -> list[str]:
        return list(self._pending_calls)

    def secrets(self) -> tuple[str, ...]:
        """The values redacted from every server text (the connection's key or token)."""
        return self._secrets

    # -- commands ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Queue the session configuration, the carried-over conversation and, after a drop mid-turn, that turn
        with a new request for its answer (call once, right after connecting)."""
        if self._started:
            return
        self._started = True
        self._send_update(self.settings, include_voice=True)
        for item in ce.history_items(self.history, self.dialect):
            self._send(item)
        carry, self._carried = self._carried, None
        if carry is not None and carry.answer_owed:
            self._resume(carry)

    def _resume(self, carry: TurnCarry) -> None:
        if carry.user_audio:
            self._carried_user = (carry.user_audio, carry.label)
            if carry.label:
                self._send(ce.system_note(f"[{carry.label} is speaking]"))
            self._send(ce.user_audio_item(carry.user_audio))
        for call in carry.calls:
            self._send(ce.function_call_item(call.call_id, call.name, call.arguments))
            self._calls[call.call_id] = _Call(call.name, call.arguments, call.output)
            if call.output is None:
                self._pending_calls[call.call_id] = ""  # still running: its output arrives here
            else:
                self._send(ce.function_output_item(call.call_id, call.output))
        _log.info("resuming an unanswered turn (%d tool call(s)) on the new connection", len(carry.calls))
        self.request_response()

    def carry(self) -> TurnCarry:
        """The unanswered turn, for the next connection's protocol (empty when nothing is owed)."""
        if not self._answer_owed:
            return TurnCarry()
        calls = tuple(CarriedCall(call_id, c.name, c.arguments, c.output) for call_id, c in self._calls.items())
        turn = self._user_turn
        if turn is not None:
            return TurnCarry(True, calls, self._recent_audio.between(turn.start_ms, turn.end_ms), turn.label)
        if self._carried_user is not None:  # dropped again before the carried turn was answered
            return TurnCarry(True, calls, *self._carried_user)
        return TurnCarry(True, calls)

    def update_settings(self, settings: SessionSettings) -> None:
        """Send new settings, without the voice (it may not change once the model has spoken; it applies from
        the next session). If the server refuses them, :attr:`settings` goes back to the last confirmed ones."""
        self.settings = settings
        self._send_update(settings, include_voice=False)

    def _send_update(self, settings: SessionSettings, *, include_voice: bool) -> None:
        self._updates += 1
        event_id = f"evt_session_update_{self._updates}"
        self._pending_update = (event_id, settings, self._now())
        self._send(ce.session_update(settings, self.dialect, event_id=event_id, include_voice=include_voice))

    def push_audio(self, pcm16: bytes) -> None:
        """Queue 24 kHz mono pcm16 for the input buffer."""
        if len(pcm16) % 2:
            raise ValueError("pcm16 audio must have an even number of bytes")
        self._recent_audio.append(pcm16)
        for start in range(0, len(pcm16), ce.MAX_APPEND_PCM16_BYTES):
            chunk = pcm16[start : start + ce.MAX_APPEND_PCM16_BYTES]
            if self._debug_wire:
                self._send(ce.audio_append(chunk))
            else:
                self._outgoing.append(ce.audio_append_json(chunk))

    def commit_audio(self) -> None:
        """End the user's turn by hand (for sessions without server VAD)."""
        self._send(ce.audio_commit())

    def clear_audio(self) -> None:
        self._send(ce.audio_clear())

    def send_text(self, text: str) -> None:
        """Add a user text message and ask for an answer (now, or once the active response is done)."""
        self._send(ce.message_item("user", text, self.dialect))
        self._remember("user", text)
        self.request_response()

    def label_turn(self, previous_item_id: str | None, label: str) -> None:
        """Tell the model who speaks in the user turn that follows ``previous_item_id``: a system note
        ``[<label> is speaking]`` inserted just before that turn's audio item."""
        self._send(ce.label_item(f"[{label} is speaking]", previous_item_id))
        if self._user_turn is not None:
            self._user_turn.label = label

    def request_response(self) -> None:
        """Ask the model to answer; deferred until no response is active."""
        self._answer_owed = True
        if self._state is ResponseState.IDLE and not self._pending_calls:
            self._create_attempts = 1
            self._send_create()
            self._set_state(ResponseState.REQUESTED, "response.create sent")
        else:
            self._follow_up = True

    def tool_output(self, call_id: str, output: str) -> bool:
        """Send a tool's output; returns False if the call is unknown (a duplicate, or from a forgotten turn)."""
        if self._pending_calls.pop(call_id, None) is None:
            _log.warning("tool output for unknown call %s dropped", call_id)
            return False
        call = self._calls.get(call_id)
        if call is not None:
            call.output = output
        self._send(ce.function_output_item(call_id, output))
        self._maybe_follow_up()
        return True

    def interrupt(self, played_ms: Mapping[str, float]) -> None:
        """The user barged in: stop the answer and make the model remember only what was actually played.

        Args:
            played_ms: per assistant audio item, the milliseconds listeners actually heard (from the audio sink).
        """
        server_cancels = self._speech_active and self.settings.create_response and self.settings.interrupt_response
        if self._state is ResponseState.ACTIVE and self._active is not None:
            self._muted_items.update(self._active.audio_item_ids)
            if not server_cancels:
                self._send(ce.response_cancel(self._active.response_id))
        for item_id, ms in played_ms.items():
            item = self._audio.get(item_id)
            if item is None:
                continue
            self._muted_items.add(item_id)
            received_ms = item.received_bytes // PCM16_BYTES_PER_MS
            end_ms = max(0, min(int(ms), received_ms))
            if item.done and end_ms >= received_ms:
                continue  # everything was heard: nothing to cut
            self._send(ce.item_truncate(item_id, item.content_index, end_ms))

    def check_timers(self) -> list[out.Output]:
        """Enforce the :class:`Bounds` of the current state; call it every fraction of the shortest bound."""
        now = self._now()
        outputs: list[out.Output] = []
        if self._state is ResponseState.REQUESTED and now - self._requested_at_s >= self.bounds.response_created_s:
            if self._create_attempts <= self.bounds.response_create_retries:
                self._create_attempts += 1
                _log.warning("no response.created after %.1f s: asking again", self.bounds.response_created_s)
                self._send_create()
                self._requested_at_s = now
            else:
                _log.warning("no response.created after %d requests: the answer is given up", self._create_attempts)
                outputs.append(self._give_up(f"no answer started within {self.bounds.response_created_s:g} s"))
        elif self._state is ResponseState.ACTIVE and now - self._last_server_event_s >= self.bounds.response_stalled_s:
            response_id = self._active.response_id if self._active is not None else None
            _log.warning("response %s stalled for %.1f s: cancelled", response_id, self.bounds.response_stalled_s)
            self._send(ce.response_cancel(response_id))
            self._active = None
            outputs.append(self._give_up(f"the answer stalled for {self.bounds.response_stalled_s:g} s"))
        if (
            self._ready
            and self._pending_update is not None
            and now - self._pending_update[2] >= self.bounds.session_updated_s
        ):
            _log.warning("session.update unconfirmed after %.1f s; no longer waited for", self.bounds.session_updated_s)
            self._pending_update = None
        return outputs

    def _send_create(self) -> None:
        self._requests_sent += 1
        request_id = f"req_{self._requests_sent}"
        self._wanted_requests[request_id] = None
        _keep_newest(self._wanted_requests)  # a server that never echoes the metadata never resolves them
        self._send(ce.response_create(request_id))

    def _requests_answered(self) -> None:
        """The answer the wanted requests asked for came (or is given up): any of them still unresolved is surplus."""
        self._surplus_requests.update(self._wanted_requests)
        self._wanted_requests.clear()
        _keep_newest(self._surplus_requests)

    def _give_up(self, reason: str) -> out.AnswerFailed:
        self._requests_answered()
        self._set_state(ResponseState.IDLE, reason)
        self._answer_owed = self._follow_up = False
        self._forget_turn()
        return out.AnswerFailed(reason)

    def forget_turn(self) -> None:
        """Owe nothing: the conversation is being reset, so no turn is resumed on the next connection."""
        self._answer_owed = self._follow_up = False
        self._forget_turn()

    def _forget_turn(self) -> None:
        self._calls.clear()
        self._user_turn = None
        self._carried_user = None

    # -- I/O boundary ------------------------------------------------------------------------------------------

    def data_to_send(self) -> list[str]:
        """The JSON texts to send, in order; empties the queue."""
        data, self._outgoing = self._outgoing, []
        return data

    def _send(self, event: dict[str, Any]) -> None:
        if self._debug_wire:
            _log.debug("send %s", json.dumps(_blank(event))[:2000])
        self._outgoing.append(json.dumps(event, separators=(",", ":")))

    def receive_text(self, text: str | bytes) -> list[out.Output]:
        """Handle one message from the server; returns what the application should hear about. Never raises:
        an event that cannot be parsed (bad JSON, missing fields, nesting too deep for Python) is counted as
        malformed and ignored."""
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ev.MalformedEvent("event is not a JSON object")
            if self._debug_wire:
                _log.debug("recv %s", shown(json.dumps(_blank(raw)), self._secrets, 2000))
            event = ev.parse_server_event(raw)
        except (ValueError, TypeError, RecursionError) as exc:  # JSONDecodeError and MalformedEvent: ValueErrors
            self.stats.malformed_events += 1
            reason = "nested too deeply" if isinstance(exc, RecursionError) else shown(str(exc), self._secrets)
            _log.warning("malformed server event ignored (%s so far): %s", self.stats.malformed_events, reason)
            return []
        if event is None:
            self.stats.unknown_events += 1
            _log.debug("server event %r ignored", shown(str(raw.get("type")), self._secrets, 80))
            return []
        if self._state is ResponseState.ACTIVE:
            self._last_server_event_s = self._now()
        return self._handle(event)

    def _text(self, text: str) -> str:
        """Server text made safe to show (redacted, one line, truncated)."""
        return shown(text, self._secrets)

    # -- server events -----------------------------------------------------------------------------------------

    def _handle(self, event: ev.ServerEvent) -> list[out.Output]:
        if self._discarded_responses and self._is_discarded(event):
            return self._on_discarded(event)
        match event:
            case ev.SessionUpdated(created=created):
                if created:
                    return []
                served = event.session.get("model")
                if isinstance(served, str) and served:
                    self.model = served  # the server knows best (an Azure deployment name says nothing)
                if self._pending_update is not None:
                    self._confirmed = self._pending_update[1]
                    self._pending_update = None
                first = not self._ready
                self._ready = True
                return [out.SessionReady(reconnected=bool(self.history))] if first else []
            case ev.SpeechStarted(item_id=item_id, audio_start_ms=start_ms):
                self._speech_active = True
                self._speech_start_ms = start_ms
                return [out.UserSpeechStarted(item_id, start_ms)]
            case ev.SpeechStopped(item_id=item_id, audio_end_ms=end_ms):
                self._speech_active = False
                self._speech_end_ms = end_ms
                return [out.UserSpeechStopped(item_id, end_ms)]
            case ev.AudioCommitted(item_id=item_id, previous_item_id=previous_item_id):
                self._user_turn = _UserTurn(item_id, self._speech_start_ms, self._speech_end_ms)
                if self.settings.create_response:
                    self._answer_owed = True  # the server answers on its own
                return [out.UserTurnCommitted(item_id, previous_item_id)]
            case ev.InputTranscript(item_id=item_id, transcript=transcript, usage=usage):
                if self._user_turn is not None and self._user_turn.item_id == item_id:
                    self._user_turn = None  # the words are in the history now
                self._remember("user", transcript)
                outputs: list[out.Output] = [out.UserTranscript(item_id, self._text(transcript))]
                if usage is not None:
                    outputs.append(self._usage_report(self.usage.add_transcription(usage)))
                return outputs
            case ev.InputTranscriptFailed(item_id=item_id, message=message):
                _log.info("transcription of %s failed: %s", item_id, self._text(message))
                return []
            case ev.ResponseCreated(response_id=response_id, metadata=metadata):
                return self._on_response_created(response_id, metadata)
            case ev.OutputItemAdded(response_id=response_id, item_id=item_id):
                self._track(response_id).output_item_ids.append(item_id)
                return []
            case ev.AudioDelta(response_id=response_id, item_id=item_id, content_index=index, pcm16=pcm16):
                return self._on_audio(response_id, item_id, index, pcm16)
            case ev.AudioDone(item_id=item_id):
                if item_id in self._audio:
                    self._audio[item_id].done = True
                return []
            case ev.TranscriptDone(item_id=item_id, transcript=transcript):
                self._remember("assistant", transcript)
                return [out.AssistantTranscript(item_id, self._text(transcript))]
            case ev.FunctionCallArgumentsDone(response_id=response_id, call_id=call_id, name=name, arguments=args):
                if call_id in self._pending_calls or call_id in self._calls:
                    return []  # a duplicate: the call is already running (or ran)
                self._pending_calls[call_id] = response_id
                self._calls[call_id] = _Call(name, args)
                self._track(response_id).call_ids.append(call_id)
                return [out.ToolCallRequested(call_id, redact(name, self._secrets), redact(args, self._secrets))]
            case ev.ResponseDone(response_id=response_id, status=status, status_details=details, usage=usage):
                return self._on_response_done(response_id, status, details, usage)
            case ev.ErrorEvent(code=code, message=message, error_type=error_type, event_id=event_id):
                code = shown(code, self._secrets, 80) if code is not None else None
                return self._on_error(code, self._text(message), shown(error_type, self._secrets, 80), event_id)
            case _:
                return []

    def _track(self, response_id: str) -> ResponseTrack:
        track = self._responses.get(response_id)
        if track is None:
            track = self._responses[response_id] = ResponseTrack(response_id)
        return track

    def _is_discarded(self, event: ev.ServerEvent) -> bool:
        if isinstance(event, ev.TranscriptDone | ev.TranscriptDelta):
            return event.item_id in self._discarded_items
        return getattr(event, "response_id", None) in self._discarded_responses

    def _on_discarded(self, event: ev.ServerEvent) -> list[out.Output]:
        """An event of a response cancelled as surplus: never heard, shown or run; only its usage counts."""
        match event:
            case ev.OutputItemAdded(item_id=item_id):
                self._discarded_items[item_id] = None
                _keep_newest(self._discarded_items)
            case ev.ResponseDone(response_id=response_id, usage=usage):
                self._discarded_responses.pop(response_id, None)
                if usage is not None:
                    return [self._usage_report(self.usage.add(usage))]
        return []

    def _on_response_created(self, response_id: str, metadata: Mapping[str, str]) -> list[out.Output]:
        request_id = metadata.get(ce.REQUEST_METADATA_KEY)
        if request_id is not None and request_id in self._surplus_requests:
            del self._surplus_requests[request_id]
            _log.info("response %s answers a request already answered or given up: cancelled", response_id)
            self._discarded_responses[response_id] = None
            _keep_newest(self._discarded_responses)
            self._send(ce.response_cancel(response_id))
            return []
        if request_id is not None and request_id in self._wanted_requests:
            del self._wanted_requests[request_id]
            self._requests_answered()
        if self._state is ResponseState.IDLE and self._follow_up and not self._pending_calls:
            self._follow_up = False  # the server answers on its own, and sees every output already sent
        self._active = self._track(response_id)
        self._set_state(ResponseState.ACTIVE, f"response.created {response_id}")
        self._answer_owed = True
        return []

    def _on_audio(self, response_id: str, item_id: str, index: int, pcm16: bytes) -> list[out.Output]:
        item = self._audio.get(item_id)
        if item is None:
            item = self._audio[item_id] = _AudioItem(response_id, index)
            self._track(response_id).audio_item_ids.append(item_id)
            while len(self._audio) > AUDIO_ITEMS_KEPT:
                self._audio.pop(next(iter(self._audio)))
        item.received_bytes += len(pcm16)
        if item_id in self._muted_items or not pcm16:
            return []
        return [out.AssistantAudio(item_id, pcm16)]

    def _on_response_done(
        self,
        response_id: str,
        status: str,
        details: Mapping[str, Any] | None,
        usage: Mapping[str, Any] | None,
    ) -> list[out.Output]:
        track = self._responses.pop(response_id, None) or ResponseTrack(response_id)
        track.status = status
        reason = status_reason(details)
        reason = self._text(reason) if reason is not None and status != "completed" else None
        outputs: list[out.Output] = [out.ResponseFinished(response_id, status, reason)]
        if self._active is not None and self._active.response_id == response_id:
            self._active = None
            self._set_state(ResponseState.IDLE, f"response.done {response_id} ({status})")
        elif self._state is ResponseState.ACTIVE and self._active is None:
            self._set_state(ResponseState.IDLE, f"response.done {response_id} ({status})")
        if track.call_ids and status in ("completed", "incomplete"):
            self._follow_up = True
        if usage is not None:
            outputs.append(self._usage_report(self.usage.add(usage)))
        if status == "failed" and not self._follow_up:
            _log.warning("response %s failed: %s", response_id, reason)
            outputs.append(out.AnswerFailed(reason or "the answer failed"))
        if not self._follow_up and not self._pending_calls and self._state is ResponseState.IDLE:
            self._answer_owed = False  # answered (or cancelled by a new turn, or failed and reported)
            self._forget_turn()
        self._maybe_follow_up()
        return outputs

    def _on_error(self, code: str | None, message: str, error_type: str, event_id: str | None) -> list[out.Output]:
        self.stats.server_errors += 1
        if code in BENIGN_ERROR_CODES:
            _log.debug("server error %s ignored: %s", code, message)
            return []
        request_id = event_id.removeprefix("evt_") if event_id is not None else ""
        if code == ACTIVE_RESPONSE_CODE and request_id in self._surplus_requests:
            del self._surplus_requests[request_id]
            _log.debug("a surplus response.create was refused while its answer plays, as expected")
            return []
        if code == ACTIVE_RESPONSE_CODE:
            self._wanted_requests.pop(request_id, None)
            # Our response.create raced a response the server started: answer once that one is done.
            _log.info("a response was already active; the request is retried when it is done")
            if self._state is ResponseState.REQUESTED:
                self._set_state(ResponseState.ACTIVE, "server has an active response")
            self._follow_up = True
            return []
        _log.warning("server error %s (%s): %s", code, error_type, message)
        fatal = is_fatal_error(code, error_type)
        pending = self._pending_update
        if not fatal and pending is not None and event_id == pending[0]:
            self._pending_update = None
            self.settings = self._confirmed
            return [out.SettingsRejected(code, message, initial=not self._ready)]
        return [out.ErrorReported(code, message, fatal=fatal)]

    def _usage_report(self, part: Usage) -> out.UsageReport:
        total = dataclasses.replace(self.usage)
        return out.UsageReport(part, total, self.cost_usd(total), self.cost_usd(part))

    def cost_usd(self, usage: Usage) -> float | None:
        """``usage`` priced for this session's models; ``None`` when one of them has no known prices."""
        return usage.cost_usd(prices_for(self.model), transcription_prices_for(self.settings.transcription_model))

    def usage_summary(self) -> str:
        """The session's usage and cost in one line (``cost unknown`` for unpriced models)."""
        return self.usage.summary(prices_for(self.model), transcription_prices_for(self.settings.transcription_model))

    def _maybe_follow_up(self) -> None:
        if self._follow_up and self._state is ResponseState.IDLE and not self._pending_calls:
            self._follow_up = False
            self._create_attempts = 1
            self._send_create()
            self._set_state(ResponseState.REQUESTED, "follow-up response.create sent")

    def _remember(self, role: Role, text: str) -> None:
        if text.strip():
            self.history.append((role, text))
            del self.history[: -self._max_history]


def _keep_newest(entries: dict[str, None]) -> None:
    """Drop the oldest entries beyond :data:`SURPLUS_KEPT`."""
    while len(entries) > SURPLUS_KEPT:
        del entries[next(iter(entries))]


def _blank(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` with audio payloads blanked, for debug wire dumps."""
    return {k: (f"<{len(v)} chars>" if k in ("delta", "audio") and isinstance(v, str) else v) for k, v in event.items()}
