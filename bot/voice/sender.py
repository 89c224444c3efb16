"""One sender thread for every voice connection in the process, instead of one discord.py player thread per guild.

Why: discord.py's ``AudioPlayer`` is a thread per voice connection that wakes every 20 ms for as long as a source
is attached, idle or not, and its Opus and encryption calls each drop and retake the GIL. With dozens of guilds
those threads starve the event loop (``bench/FINDINGS.md``, section 2). :class:`VoiceSender` keeps one thread on
one drift-free 20 ms clock. Each tick it reads only the sources that have something to play, and hands their
packets to the public ``VoiceClient.send_audio_packet(packet, encode=False)``, which does the RTP header,
DAVE and transport encryption, as discord.py's player does.

Per connection it behaves as a Discord client should:

- SPEAKING is switched on when an answer starts (or its lead-in, while the model thinks) and off when it is over,
  so the speaking ring shows only while the bot talks.
- After the audio it sends five Opus silence frames before going quiet, so receivers do not interpolate across the
  gap (Discord's voice documentation asks for this).
- While the connection is down (a voice reconnect), the source is not read, so its audio waits, as it does with
  discord.py's player. SPEAKING is sent again once the connection is back.
- A source returning ``b""`` (closed) is dropped. A source or connection that raises loses that frame, and is
  dropped only after ``MAX_CONSECUTIVE_FAILURES`` frames in a row fail (a DAVE transition or a socket hiccup does
  not silence a guild for good). The other connections carry on regardless.

Under load the ticks run late when the thread waits for the GIL or for a CPU, not on its own work (a few ms per
tick; profiled in ``bench/FINDINGS.md``, issue 16). So the per-packet calls that used to hand the GIL to another
thread mid-tick keep it: the answer's Opus encoder (``bind_libopus_holding_gil``) and the UDP send
(:mod:`bot.voice.udp_send`).

After a stall (the process was descheduled) the clock restarts instead of sending the missed frames back to
back, because a burst would drain the sources faster than real time and cause underruns (measured in the load
benchmark). The thread starts with the first connection and ends when none is left.

Threads: :meth:`add` and :meth:`remove` may be called from any thread. Sources are read and packets sent on
the sender thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.audio.formats import FRAME_MS
from bot.voice.playback import OPUS_SILENCE_FRAME

_log = logging.getLogger(__name__)

#: Opus silence frames sent after the audio before going quiet (Discord's voice documentation asks for five).
TRAILING_SILENCE_FRAMES = 5
#: Frames in a row that may fail (1 s) before a connection is dropped.
MAX_CONSECUTIVE_FAILURES = 50


class VoiceOutput(Protocol):
    """The part of a voice connection the sender uses (``ReceivingVoiceClient`` provides it)."""

    def is_connected(self) -> bool: ...

    def send_audio_packet(self, data: bytes, *, encode: bool = True) -> None: ...

    def set_speaking_threadsafe(self, speaking: bool) -> None: ...


class OpusSource(Protocol):
    """A live source of Opus packets (``OpusPlaybackSource``): one per ``read()``, ``b""`` once closed."""

    def is_opus(self) -> bool: ...

    def read(self) -> bytes: ...

    @property
    def is_active(self) -> bool:
        """True while it has something to send: an answer, or the lead-in silence before one."""


@dataclass
class SenderStats:
    """Counters since the sender was made (read them on any thread; they only grow)."""

    ticks: int = 0
    packets_sent: int = 0
    clock_restarts: int = 0
    errors: int = 0


@dataclass(eq=False)
class _Stream:
    voice: VoiceOutput
    source: OpusSource
    speaking: bool = False
    trailing_left: int = 0
    failures: int = 0
    on_dropped: Callable[[], None] | None = None


class VoiceSender:
    """Sends every connection's Opus packets from one 20 ms-clocked thread. See the module docstring."""

    def __init__(
        self,
        *,
        frame_ms: float = FRAME_MS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        threaded: bool = True,
    ) -> None:
        """``threaded=False``: no thread; whoever owns the sender calls :meth:`tick` every frame instead (tests
        step it this way). Never call :meth:`tick` while the thread runs: an Opus encoder is not thread-safe."""
        if frame_ms <= 0:
            raise ValueError(f"frame_ms must be > 0, got {frame_ms}")
        self._frame_s = frame_ms / 1000
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._thread: threading.Thread | None = None
        self._threaded = threaded
        self.stats = SenderStats()

    def add(self, voice: VoiceOutput, source: OpusSource, *, on_dropped: Callable[[], None] | None = None) -> None:
        """Play ``source`` on ``voice`` (replacing what that connection played). Starts the thread if needed.

        ``on_dropped`` is called (on the sender thread) if the sender gives up on the connection after
        ``MAX_CONSECUTIVE_FAILURES`` failed frames; not on :meth:`remove`, :meth:`close` or a closed source.
        """
        if not source.is_opus():
            raise ValueError("VoiceSender plays Opus sources only (use OpusPlaybackSource)")
        with self._lock:
            self._streams[id(voice)] = _Stream(voice, source, on_dropped=on_dropped)
            if self._threaded and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="voice-sender", daemon=True)
                self._thread.start()

    def remove(self, voice: VoiceOutput) -> None:
        """Stop playing on ``voice``. SPEAKING goes off if it was on. Nothing else is sent."""
        with self._lock:
            stream = self._streams.pop(id(voice), None)
        if stream is not None and stream.speaking:
            self._set_speaking(stream, False)

    def close(self, timeout_s: float = 1.0) -> None:
        """Stop playing on every connection and wait (up to ``timeout_s``) for the thread to end."""
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
            thread = self._thread
        for stream in streams:
            if stream.speaking:
                self._set_speaking(stream, False)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def playing_on(self, voice: VoiceOutput) -> bool:
        """Whether a source is attached to ``voice``."""
        with self._lock:
            return id(voice) in self._streams

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._streams)

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None

    def tick(self) -> None:
        """One 20 ms pass over every connection (the thread's work, or the owner's when not threaded). Never raises."""
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            try:
                keep = self._send_one(stream)
                stream.failures = 0
            except Exception:
                keep = self._failed(stream)
            if not keep:
                self._drop(stream)
        self.stats.ticks += 1

    # -- sender thread ------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        start_s = self._clock()
        ticks = 0
        while True:
            with self._lock:
                if not self._streams:
                    self._thread = None
                    return
            self.tick()
            ticks += 1
            wait_s = start_s + ticks * self._frame_s - self._clock()
            if wait_s < -self._frame_s:  # more than a frame late: a fresh clock, no burst of missed frames
                self.stats.clock_restarts += 1
                start_s, ticks, wait_s = self._clock(), 1, self._frame_s  # the tick just done is the new start
            if wait_s > 0:
                self._sleep(wait_s)

    def _send_one(self, stream: _Stream) -> bool:
        """Send this tick's packet for one connection, if any. False: drop the connection."""
        voice, source = stream.voice, stream.source
        if not voice.is_connected():
            stream.speaking = False  # a new voice websocket does not know we were speaking
            return True
        if not source.is_active and stream.trailing_left == 0:
            if stream.speaking:
                self._set_speaking(stream, False)
            return True
        packet = source.read()
        if not packet:
            if stream.speaking:
                self._set_speaking(stream, False)
            return False
        if source.is_active or packet != OPUS_SILENCE_FRAME:
            if not stream.speaking:
                self._set_speaking(stream, True)
            stream.trailing_left = TRAILING_SILENCE_FRAMES
        else:
            stream.trailing_left -= 1
        voice.send_audio_packet(packet, encode=False)
        self.stats.packets_sent += 1
        return True

    def _failed(self, stream: _Stream) -> bool:
        """A frame failed (called from an ``except`` block). False: drop the connection."""
        self.stats.errors += 1
        stream.failures += 1
        if stream.failures == 1:
            _log.exception("voice sender: a frame could not be sent; the connection goes on")
        if stream.failures < MAX_CONSECUTIVE_FAILURES:
            return True
        _log.error("voice sender: %d frames in a row failed; the connection is no longer played to", stream.failures)
        if stream.speaking:
            self._set_speaking(stream, False)
        if stream.on_dropped is not None:
            try:
                stream.on_dropped()
            except Exception:
                _log.exception("voice sender: the dropped-connection handler failed")
        return False

    def _set_speaking(self, stream: _Stream, speaking: bool) -> None:
        stream.speaking = speaking
        try:
            stream.voice.set_speaking_threadsafe(speaking)
        except Exception:
            _log.exception("voice sender: could not set the speaking state")

    def _drop(self, stream: _Stream) -> None:
        with self._lock:
            if self._streams.get(id(stream.voice)) is stream:
                del self._streams[id(stream.voice)]
