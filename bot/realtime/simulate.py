"""``python -m bot simulate``: one spoken turn through the bot's audio path and a Realtime server, without Discord.

The input WAV is converted to 48 kHz stereo as Discord delivers it, streamed in 20 ms frames at real-time pace
(``pace``, the ``--speed`` option, > 1 runs faster) through the same 48k stereo -> 24k mono resampler the bot uses,
and followed by silence until the answer is complete, with a progress line every 5 s of a long input. The answer
is "played" like Discord would, 20 ms of 48 kHz stereo at a time, into the output WAV; barge-in clears it like the
Discord source would. Every input (the WAV, the output path, the URL, the numbers) is checked before connecting,
since a real server bills the conversation.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from bot.audio.convert import to_discord_pcm16
from bot.audio.formats import DISCORD, DISCORD_FRAME_BYTES, DISCORD_SILENCE_FRAME, FRAME_MS
from bot.audio.resample import DiscordToRealtimeResampler, RealtimeToDiscordResampler
from bot.audio.wav import WavError, read_wav, write_wav
from bot.config import Dialect, RealtimeConfig
from bot.persona import PersonaError, default_persona, load_persona, persona_instructions, persona_tools
from bot.realtime import outputs as out
from bot.realtime.client_events import SessionSettings
from bot.realtime.driver import RealtimeSession
from bot.realtime.endpoint import endpoint_for
from bot.realtime.errors import RealtimeError
from bot.secret import Secret

_log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
#: The longest answer wait accepted (a Realtime session lasts an hour at most).
MAX_ANSWER_TIMEOUT_S = 3600.0
#: Inputs longer than this get a progress line every ``PROGRESS_EVERY_S`` of audio streamed.
PROGRESS_EVERY_S = 5.0
#: The environment variable holding each provider's key (to say which key a server rejected).
_KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "azure": "AZURE_OPENAI_API_KEY", "custom": "REALTIME_API_KEY"}
_AUTH_CODES = frozenset({"invalid_api_key", "invalid_authentication", "unauthorized"})


@dataclass(frozen=True, slots=True)
class SimulationOptions:
    input_path: Path
    output_path: Path
    url: str | None = None
    api_key: Secret | None = None
    dialect: Dialect | None = None
    persona_file: Path | None = None
    #: The configured server, used when ``url`` is not given (``--url`` wins).
    realtime: RealtimeConfig | None = None
    #: 1.0 = real time; tests may stream faster.
    pace: float = 1.0
    #: Longest wait for the answer after the input ends.
    answer_timeout_s: float = 30.0
    #: A line about the server, printed once the inputs are checked (``--offline`` says which server answers).
    server_note: str | None = None


class WavPlayback:
    """The simulator's audio sink: plays answer audio into a buffer at (paced) real time, like Discord's player.

    Implements :class:`bot.realtime.driver.AudioSink`.
    """

    def __init__(self, pace: float, now: Callable[[], float] = time.monotonic) -> None:
        self._pace = pace
        self._now = now
        self._resampler = RealtimeToDiscordResampler()
        self._item: str | None = None
        self._pending = bytearray()
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self.played = bytearray()
        self.played_ms: dict[str, float] = {}
        self.first_audio_at_s: float | None = None

    def feed(self, item_id: str, pcm16_24k_mono: bytes) -> None:
        if self.first_audio_at_s is None:
            self.first_audio_at_s = self._now()
        if self._item is not None and item_id != self._item:
            self._enqueue(self._item, self._resampler.flush())
        self._item = item_id
        self._enqueue(item_id, self._resampler.process(pcm16_24k_mono))

    def end_of_item(self) -> None:
        if self._item is not None:
            self._enqueue(self._item, self._resampler.flush())
            self._item = None

    def _enqueue(self, item_id: str, pcm16_48k_stereo: bytes) -> None:
        self._pending += pcm16_48k_stereo
        while len(self._pending) >= DISCORD_FRAME_BYTES:
            self._queue.append((item_id, bytes(self._pending[:DISCORD_FRAME_BYTES])))
            del self._pending[:DISCORD_FRAME_BYTES]

    @property
    def is_playing(self) -> bool:
        return bool(self._queue)

    def clear(self) -> dict[str, float]:
        self._queue.clear()
        self._pending.clear()
        self._resampler.reset()
        self._item = None
        return dict(self.played_ms)

    async def run(self) -> None:
        """Play one 20 ms frame per (paced) 20 ms, scheduled against the start so it never drifts."""
        start = self._now()
        frame_s = FRAME_MS / 1000 / self._pace
        ticks = 0
        while True:
            ticks += 1
            await asyncio.sleep(max(0.0, start + ticks * frame_s - self._now()))
            if self._queue:
                item_id, frame = self._queue.popleft()
                self.played += frame
                self.played_ms[item_id] = self.played_ms.get(item_id, 0.0) + FRAME_MS


def _check_url(url: str) -> None:
    """A ValueError unless ``url`` is a ws:// or wss:// URL; for http(s) it names the WebSocket form to use."""
    parsed = urlparse(url)
    if parsed.scheme in ("ws", "wss") and parsed.netloc:
        return
    hint = ""
    if parsed.scheme in ("http", "https") and parsed.netloc:
        websocket = parsed._replace(scheme="ws" if parsed.scheme == "http" else "wss").geturl()
        hint = f"; Realtime servers speak WebSocket: try {websocket}"
    raise ValueError(f"--url must be a ws:// or wss:// URL (got {url!r}){hint}")


def _check_output(path: Path) -> None:
    """A ValueError when the answer could not be written to ``path`` (checked before connecting: answers cost)."""
    folder = path.parent
    if path.is_dir():
        raise ValueError(f"cannot write the answer to {path}: it is a folder")
    if not folder.is_dir():
        raise ValueError(f"cannot write the answer to {path}: the folder {folder} does not exist")
    writable = os.access(path, os.W_OK) if path.exists() else os.access(folder, os.W_OK | os.X_OK)
    if not writable:
        raise ValueError(f"cannot write the answer to {path}: permission denied")


def _check_numbers(options: SimulationOptions) -> None:
    if not (math.isfinite(options.pace) and options.pace > 0):
        raise ValueError(f"the speed must be a finite number above 0 (got {options.pace})")
    if not (math.isfinite(options.answer_timeout_s) and 0 < options.answer_timeout_s <= MAX_ANSWER_TIMEOUT_S):
        raise ValueError(
            f"the timeout must be a number of seconds above 0 and at most {MAX_ANSWER_TIMEOUT_S:g} "
            f"(got {options.answer_timeout_s})"
        )


def _rejection(exc: RealtimeError, options: SimulationOptions, config: RealtimeConfig) -> str:
    """The error line for a failed start; a rejected key says which key it was (never its value)."""
    if exc.status not in (401, 403) and exc.code not in _AUTH_CODES:
        return exc.message
    status = f" (HTTP {exc.status})" if exc.status else ""
    if options.api_key is not None:
        source = "the key given with --api-key; check it"
    elif config.api_key is not None:
        variable = _KEY_VARIABLES.get(config.provider, "the API key")
        source = f"{variable} from the environment or .env; check it there"
    else:
        source = "no key was sent; give one with --api-key"
    return f"the Realtime server rejected the API key{status}: {source}"


def _realtime_config(options: SimulationOptions) -> RealtimeConfig:
    if options.url:
        _check_url(options.url)
        return RealtimeConfig(provider="custom", url=options.url, api_key=options.api_key, dialect=options.dialect)
    if options.realtime is None:
        raise ValueError("no Realtime server: give --url, or configure OPENAI_API_KEY (or Azure) in .env")
    config = options.realtime
    if options.api_key is not None:
        config = replace(config, api_key=options.api_key)
    if options.dialect is not None:
        config = replace(config, dialect=options.dialect)
    return config


async def run_simulation(options: SimulationOptions, out_line: Callable[[str], None]) -> int:
    """Run one simulated turn; prints through ``out_line``; returns the exit code (0 ok, 1 failed, 2 bad input)."""
    try:
        _check_numbers(options)
        samples, rate = read_wav(options.input_path)
        if len(samples) == 0:
            raise ValueError(f"{options.input_path} holds no audio")
        _check_output(options.output_path)
        persona = load_persona(options.persona_file) if options.persona_file else default_persona()
        config = _realtime_config(options)
        endpoint = endpoint_for(config)
        discord_pcm16 = to_discord_pcm16(samples, rate)
    except (WavError, PersonaError, ValueError) as exc:
        out_line(f"error: {exc}")
        return EXIT_BAD_INPUT
    if options.server_note:
        out_line(options.server_note)
    tools = persona_tools(persona)
    settings = SessionSettings(
        instructions=persona_instructions(persona),
        voice=config.voice,
        tools=tuple(tools.schemas()),
        transcription_model=config.transcription_model,
    )
    playback = WavPlayback(options.pace)
    session = RealtimeSession(endpoint, settings, tools, sink=playback)
    try:
        await session.start()
    except RealtimeError as exc:
        out_line(f"error: {_rejection(exc, options, config)}")
        return EXIT_FAILED
    out_line(f"connected to {endpoint.describe()} ({endpoint.dialect}); streaming {options.input_path.name}")
    player = asyncio.get_running_loop().create_task(playback.run())
    turn = _Turn(session, playback, out_line)
    reader = asyncio.get_running_loop().create_task(turn.read())
    try:
        code = await _stream(discord_pcm16, session, playback, turn, options)
    finally:
        await session.close()
        player.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    if turn.fatal is not None:
        out_line(f"error: {turn.fatal}")
        code = EXIT_FAILED
    elif turn.failed is not None:
        out_line(f"error: {turn.failed}")
        code = EXIT_FAILED
    if turn.speech_end_at_s is not None and playback.first_audio_at_s is not None:
        latency_ms = (playback.first_audio_at_s - turn.speech_end_at_s) * 1000
        out_line(f"latency (end of speech -> first answer audio): {latency_ms:.0f} ms")
    out_line(f"usage: {session.protocol.usage_summary()}")
    try:
        write_wav(options.output_path, bytes(playback.played), DISCORD.sample_rate, DISCORD.channels)
    except OSError as exc:
        out_line(f"error: cannot write {options.output_path}: {exc.strerror or exc}")
        return EXIT_FAILED
    seconds = len(playback.played) / DISCORD.bytes_for_ms(1000)
    out_line(f"wrote {seconds:.2f} s of answer audio to {options.output_path}")
    return code


class _Turn:
    """Reads session outputs: prints them and tracks whether the answer is complete."""

    def __init__(self, session: RealtimeSession, playback: WavPlayback, out_line: Callable[[str], None]) -> None:
        self._session = session
        self._playback = playback
        self.out = out_line
        self.stream_started_at_s = 0.0
        self.pace = 1.0
        self.speech_end_at_s: float | None = None
        self.answered = asyncio.Event()
        self.fatal: str | None = None
        #: Why the answer failed (the response's ``status_details``, or no answer in time), if it did.
        self.failed: str | None = None

    async def read(self) -> None:
        async for event in self._session.events():
            match event:
                case out.UserSpeechStopped(audio_end_ms=end_ms):
                    self.speech_end_at_s = self.stream_started_at_s + end_ms / 1000 / self.pace
                case out.UserTranscript(text=text):
                    self.out(f"user: {text}")
                case out.AssistantTranscript(text=text):
                    self.out(f"assistant: {text}")
                case out.ToolCallFinished(name=name, arguments=arguments, output=output):
                    self.out(f"tool call: {name}({arguments}) -> {output}")
                case out.ResponseFinished(status=status, reason=reason):
                    self._playback.end_of_item()
                    if status != "completed":
                        self.out(f"response {status}" + (f": {reason}" if reason else ""))
                    if self._session.protocol.busy:
                        continue
                    if status == "incomplete":  # cut short (max_output_tokens, content_filter): not the answer
                        self.failed = self.failed or f"the answer was cut short ({reason or 'incomplete'})"
                        self.answered.set()
                    elif self._playback.first_audio_at_s is not None:
                        self.answered.set()
                case out.AnswerFailed(reason=reason):  # failed, never started, or stalled
                    self.failed = self.failed or f"the answer failed: {reason}"
                    self.answered.set()
                case out.ErrorReported(message=message, fatal=fatal):
                    self.out(f"server error: {message}")
                    if fatal:
                        self.fatal = message
                case out.Reconnecting(reason=reason):
                    self.out(f"reconnecting: {reason}")
                case out.SessionEnded(error=error):
                    if error:
                        self.fatal = error
                    self.answered.set()


async def _stream(
    discord_pcm16: bytes, session: RealtimeSession, playback: WavPlayback, turn: _Turn, options: SimulationOptions
) -> int:
    """Stream the input at pace, then silence until the answer has been played (or the timeout)."""
    resampler = DiscordToRealtimeResampler()
    frame_s = FRAME_MS / 1000 / options.pace
    loop = asyncio.get_running_loop()
    start = loop.time()
    turn.stream_started_at_s, turn.pace = playback._now(), options.pace
    frames = len(discord_pcm16) // DISCORD_FRAME_BYTES
    input_s = frames * FRAME_MS / 1000
    progress_frames = int(PROGRESS_EVERY_S * 1000 / FRAME_MS) if input_s > PROGRESS_EVERY_S else 0
    deadline_frames = frames + int(options.answer_timeout_s * 1000 / FRAME_MS)
    for n in range(deadline_frames):
        if n < frames:
            frame = discord_pcm16[n * DISCORD_FRAME_BYTES : (n + 1) * DISCORD_FRAME_BYTES]
            if progress_frames and n and n % progress_frames == 0:
                turn.out(f"streamed {n * FRAME_MS / 1000:.0f} s of {input_s:.1f} s")
        else:
            if turn.answered.is_set() and not playback.is_playing:
                break
            frame = DISCORD_SILENCE_FRAME
        session.push_audio(resampler.process(frame))
        await asyncio.sleep(max(0.0, start + (n + 1) * frame_s - loop.time()))
    else:
        turn.out(f"no complete answer within {options.answer_timeout_s:.0f} s after the input ended")
        return EXIT_FAILED
    return EXIT_OK if turn.fatal is None else EXIT_FAILED
