"""The local server's stand-in for the model: it hears the end of a spoken turn, looks a fact up, and says it.

Per connection (:class:`StandInModel` is the script): each turn found by the peer's energy VAD (with the client's
``silence_duration_ms``) gets a placeholder transcript (this server recognises no words), and, when the client's
turn detection creates responses (or once the client sends ``response.create``), an answer. When the session
offers ``get_your_info`` the answer is a function call with :data:`FIXED_QUERY` first, and then the tool's output
spoken by the :class:`~bot.fakeserver.voice.Voice` after the client's ``response.create``; without the tool it is a
fixed sentence. A ``response.create`` without a turn (a greeting, a typed message) is answered with a sentence too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.fakeserver.peer import VAD_SILENCE_MS, Peer
from bot.fakeserver.voice import Voice
from bot.persona.instructions import TOOL_NAME

_log = logging.getLogger(__name__)

#: The query of every ``get_your_info`` call (the server cannot know what was asked).
FIXED_QUERY = "favorite food"
#: How long the model waits for the session's configuration, then for the tool's output and ``response.create``.
CONFIGURE_WAIT_S = 2.0
TOOL_WAIT_S = 30.0
NO_TOOL_ANSWER = "Hello! This is the local test server. I heard you, but I have no tool to look anything up."
REQUEST_ANSWER = "Hello! This is the local test server."
#: The longest ``silence_duration_ms`` honoured; a larger or malformed one gets the default.
MAX_SILENCE_MS = 10_000
_FOREVER = float("inf")


def _dict(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else {} (a client may send anything)."""
    return value if isinstance(value, dict) else {}


def _turn_detection(session: dict[str, Any]) -> dict[str, Any] | None:
    """The session's turn detection (GA nests it under audio.input, beta has it at the top); {} when unset."""
    audio_input = _dict(_dict(session.get("audio")).get("input"))
    for holder in (audio_input, session):
        if "turn_detection" in holder:
            value = holder["turn_detection"]
            return value if isinstance(value, dict) else None
    return {}


def _tool_names(session: dict[str, Any]) -> set[str]:
    tools = session.get("tools")
    return {str(tool.get("name")) for tool in tools if isinstance(tool, dict)} if isinstance(tools, list) else set()


def _wants_transcripts(session: dict[str, Any]) -> bool:
    audio_input = _dict(_dict(session.get("audio")).get("input"))
    return bool(audio_input.get("transcription") or session.get("input_audio_transcription"))


def sentence_for(tool_output: str) -> str:
    """What to say for ``get_your_info``'s output: its facts as sentences, or that nothing was found."""
    try:
        facts = json.loads(tool_output)
    except ValueError:
        facts = None
    if not isinstance(facts, dict) or not facts or "error" in facts:
        return "I could not look that up."
    return " ".join(f"My {str(key).replace('_', ' ')} is {value}." for key, value in facts.items())


class StandInModel:
    """The script of every connection of the local server. ``on_line`` hears one line per thing it does."""

    def __init__(self, voice: Voice, on_line: Callable[[str], None] | None = None) -> None:
        self.voice = voice
        self._on_line = on_line or (lambda line: None)

    async def __call__(self, peer: Peer) -> None:
        await _Conversation(peer, self.voice, self._on_line).run()


class _Conversation:
    """One connection's turns (the model's side)."""

    def __init__(self, peer: Peer, voice: Voice, on_line: Callable[[str], None]) -> None:
        self._peer = peer
        self._voice = voice
        self._say = on_line
        self._events: asyncio.Future[dict[str, Any]] | None = None
        self._turn: asyncio.Future[tuple[int, int]] | None = None

    async def run(self) -> None:
        self._say(f"a client connected ({self._peer.server.dialect.upper()})")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._peer.configured.wait(), CONFIGURE_WAIT_S)
        heard = False  # a committed turn waits for the client's response.create
        try:
            self._events = asyncio.ensure_future(self._peer.next_event(_FOREVER))
            self._turn = self._listen()
            while True:
                waiting: set[asyncio.Future[Any]] = {self._turn, self._events}
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if self._turn in done:
                    start_ms, end_ms = self._turn.result()
                    self._peer.consume_audio()
                    await self._heard(start_ms, end_ms)
                    detection = _turn_detection(self._peer.session) or {}
                    if detection.get("create_response", True):
                        await self._answer_turn()
                    else:
                        heard = True
                    self._turn = self._listen()
                if self._events in done:
                    event = await self._next_event(_FOREVER)
                    kind = event.get("type")
                    if kind == "response.create":
                        await (self._answer_turn(event) if heard else self._speak(REQUEST_ANSWER, event))
                        heard = False
                    elif kind == "input_audio_buffer.commit":
                        self._peer.consume_audio()
                        heard = True
                    elif kind == "input_audio_buffer.clear":
                        self._peer.consume_audio()
                    else:
                        _log.debug("ignored client event %s", kind)
        finally:
            for task in (self._turn, self._events):
                if task is not None:
                    task.cancel()
            self._say("the client left")

    def _listen(self) -> asyncio.Future[tuple[int, int]]:
        detection = _turn_detection(self._peer.session)
        if detection is None:  # the client commits turns itself
            return asyncio.get_running_loop().create_future()
        given = detection.get("silence_duration_ms")
        silence_ms = given if isinstance(given, int) and 0 < given <= MAX_SILENCE_MS else VAD_SILENCE_MS
        return asyncio.ensure_future(self._peer.wait_for_user_turn(silence_ms=silence_ms, timeout_s=_FOREVER))

    async def _next_event(self, timeout_s: float) -> dict[str, Any]:
        """The next client event; a timeout leaves the pending read in place for the next call."""
        assert self._events is not None
        done, _ = await asyncio.wait({self._events}, timeout=None if timeout_s == _FOREVER else timeout_s)
        if not done:
            raise TimeoutError
        event = self._events.result()
        self._events = asyncio.ensure_future(self._peer.next_event(_FOREVER))
        return event

    async def _heard(self, start_ms: int, end_ms: int) -> None:
        seconds = (end_ms - start_ms) / 1000
        self._say(f"heard {seconds:.1f} s of speech")
        if _wants_transcripts(self._peer.session):
            text = f"({seconds:.1f} s of speech; the local server recognises no words)"
            await self._peer.user_transcript(self._peer.last_user_item_id, text)

    async def _answer_turn(self, request: Mapping[str, Any] | None = None) -> None:
        """Answer the turn just heard (``request``: the client's ``response.create``, if it asked)."""
        if TOOL_NAME not in _tool_names(self._peer.session):
            await self._speak(NO_TOOL_ANSWER, request)
            return
        response_id = await self._peer.start_response(request)
        arguments = json.dumps({"query": FIXED_QUERY})
        [call_id] = await self._peer.call_tools([(TOOL_NAME, arguments)], response_id=response_id)
        await self._peer.finish_response(response_id, usage=False)
        self._say(f"called {TOOL_NAME}({arguments})")
        output: str | None = None
        try:
            while True:
                event = await self._next_event(TOOL_WAIT_S)
                item = _dict(event.get("item"))
                if event.get("type") == "conversation.item.create" and item.get("call_id") == call_id:
                    output = str(item.get("output", ""))
                elif event.get("type") == "response.create":
                    follow_up = event
                    break
        except TimeoutError:
            self._say(f"no tool output and response.create within {TOOL_WAIT_S:.0f} s; listening again")
            return
        await self._speak(sentence_for(output) if output is not None else "I got no answer from my tool.", follow_up)

    async def _speak(self, text: str, request: Mapping[str, Any] | None = None) -> None:
        """One spoken response (to ``request``, whose metadata it echoes, as the API does)."""
        pcm16 = await asyncio.to_thread(self._voice.render, text)
        await self._peer.answer_with_audio(pcm16, text, usage=False, request=request)
        self._say(f"said: {text}")
