"""The bot's voice: a ``discord.AudioSource`` fed with the Realtime answer, with immediate barge-in.

Threads: :meth:`PlaybackSource.read` runs on the sending thread every 20 ms (the bot's
:class:`~bot.voice.sender.VoiceSender`, or discord.py's player); :meth:`feed`, :meth:`clear`, :meth:`close` and the
queries run on the event loop. One ``threading.Lock`` guards all state, and nothing slow
happens under it (resampling a chunk is a few hundred microseconds of numpy).

In: ``(item_id, 24 kHz mono pcm16)`` chunks of any size. Out: exactly one 20 ms frame per ``read()`` in the
source's ``pcm_format``: 48 kHz stereo pcm16 (3,840 bytes, what discord.py's player takes; the answer is resampled)
or 24 kHz mono (960 bytes, the answer as it came, for an encoder that takes it: no resampler at all). Audio when
there is some, silence on underrun (the sender keeps its clock), never ``b""`` until :meth:`close`. Audio starts
after a start-up buffer of ``prebuffer_ms`` (or once that long has passed with less), and the same re-priming
applies after an underrun. When the queue runs dry, the last fragment (with the resampler's held-back tail) is
played at once, padded with silence. :meth:`clear` drops everything not yet played: the next ``read()`` is silence.
It reports, per assistant item, the milliseconds actually played, for ``conversation.item.truncate``.

The lead-in. After a pause, Discord's receivers clip the first word of a stream unless some silence comes first
(``lead_silence_ms``). That silence need not delay the answer: :meth:`start_lead_in`, called when the session asks
for an answer, starts it at once, while the model thinks (the source counts as :attr:`is_active`, so the sender
switches SPEAKING on and sends Opus silence frames). When the answer's first audio arrives it goes out at the next
read, without the start-up buffer and without waiting for the rest of the lead silence: the stream is already warm,
and a real model takes longer to start speaking than the lead silence lasts, so an answer adds no delay of its own.
If no answer comes within ``max_lead_in_ms``, the lead-in stops (the sender then ends the stream as after an
answer), and a later answer gets the usual lead silence.

The queue is bounded: once ``max_buffered_ms`` of audio waits to be played (a server streaming without end), the
rest of that item is dropped, not queued (counted in :attr:`PlaybackSource.dropped_ms`): the answer is cut where
the queue filled, never played with holes in it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Protocol

import discord

from bot.audio.formats import DISCORD, DISCORD_SILENCE_FRAME, FRAME_MS, REALTIME, REALTIME_SILENCE_FRAME, PcmFormat
from bot.audio.resample import RealtimeToDiscordResampler
from bot.ops import metrics
from bot.voice.opus_encoder import NATIVE_24K_MONO, EncoderSettings, answer_encoder

_log = logging.getLogger(__name__)

DEFAULT_PREBUFFER_MS = 60.0
#: Silence played before the first answer frame after a pause, so Discord's receivers do not clip the first word.
DEFAULT_LEAD_SILENCE_MS = 200.0
#: How long the source must have been silent for the next answer to get the lead silence.
LEAD_SILENCE_AFTER_IDLE_MS = 400.0
#: Items whose played time is remembered after they finished.
PLAYED_HISTORY_ITEMS = 64
#: The longest lead-in while the model thinks: an answer that has not started by then gets the usual lead silence.
DEFAULT_MAX_LEAD_IN_MS = 3_000.0
#: Most audio queued ahead of the player: at 48 kHz stereo pcm16, 11 MB per guild (a quarter of it at 24 kHz mono).
DEFAULT_MAX_BUFFERED_MS = 60_000.0
_INPUT_BYTES_PER_MS = REALTIME.bytes_for_ms(1)  # 48: 24 kHz mono pcm16
#: Discord's Opus silence frame (what clients send instead of encoding silence).
OPUS_SILENCE_FRAME = b"\xf8\xff\xfe"


class Passthrough:
    """The "resampler" for a source that plays 24 kHz mono: the answer as it came, whole samples only (an odd
    trailing byte waits for the next chunk)."""

    def __init__(self) -> None:
        self._rest = b""

    def process(self, pcm16: bytes) -> bytes:
        data = self._rest + pcm16 if self._rest else pcm16
        whole = len(data) - len(data) % REALTIME.bytes_per_sample_frame
        self._rest = data[whole:]
        return data[:whole]

    def flush(self) -> bytes:
        self._rest = b""
        return b""

    def reset(self) -> None:
        self._rest = b""


class _Resampler(Protocol):
    def process(self, pcm16: bytes) -> bytes: ...
    def flush(self) -> bytes: ...
    def reset(self) -> None: ...


class PlaybackSource(discord.AudioSource):
    """A live audio source for ``VoiceClient.play``; see the module docstring for the threading contract."""

    def __init__(
        self,
        *,
        prebuffer_ms: float = DEFAULT_PREBUFFER_MS,
        lead_silence_ms: float = DEFAULT_LEAD_SILENCE_MS,
        clock: Callable[[], float] = time.monotonic,
        resampler_factory: Callable[[], _Resampler] | None = None,
        max_buffered_ms: float = DEFAULT_MAX_BUFFERED_MS,
        pcm_format: PcmFormat = DISCORD,
        max_lead_in_ms: float = DEFAULT_MAX_LEAD_IN_MS,
    ) -> None:
        if prebuffer_ms < 0 or lead_silence_ms < 0 or max_lead_in_ms < 0:
            raise ValueError(
                "prebuffer_ms, lead_silence_ms and max_lead_in_ms must be >= 0, "
                f"got {prebuffer_ms}, {lead_silence_ms}, {max_lead_in_ms}"
            )
        if max_buffered_ms < prebuffer_ms or max_buffered_ms <= 0:
            raise ValueError(f"max_buffered_ms must be > 0 and >= prebuffer_ms, got {max_buffered_ms}")
        if pcm_format not in (DISCORD, REALTIME):
            raise ValueError(f"a playback source plays 48 kHz stereo or 24 kHz mono, not {pcm_format}")
        self.pcm_format = pcm_format
        self._frame_bytes = pcm_format.bytes_for_ms(FRAME_MS)
        #: The silent frame ``read()`` returns (compare with ``is``: audio is never this object).
        self.silence_frame = DISCORD_SILENCE_FRAME if pcm_format == DISCORD else REALTIME_SILENCE_FRAME
        self._bytes_per_ms = pcm_format.bytes_for_ms(1)
        self._lock = threading.Lock()
        self._max_buffered_bytes = pcm_format.bytes_for_ms(max_buffered_ms)
        self._overflowed_item: str | None = None
        self._dropped_input_bytes = 0
        self._prebuffer_bytes = max(self._frame_bytes, pcm_format.bytes_for_ms(prebuffer_ms))
        self._prime_reads = max(1, round(prebuffer_ms / FRAME_MS))
        if resampler_factory is None:
            resampler_factory = RealtimeToDiscordResampler if pcm_format == DISCORD else Passthrough
        self._resampler = resampler_factory()
        self._segments: deque[tuple[str, bytes]] = deque()
        self._head_offset = 0
        self._buffered_bytes = 0
        self._feed_item: str | None = None
        self._resampler_holds = False
        self._started = False
        self._waited_reads = 0
        self._last_read_item: str | None = None
        self._played_bytes: OrderedDict[str, int] = OrderedDict()
        self._closed = False
        self._lead_frames = round(lead_silence_ms / FRAME_MS)
        self._lead_left = 0
        self._max_lead_in_s = max_lead_in_ms / 1000
        self._lead_in_since_s: float | None = None  # a lead-in runs while the model thinks (start_lead_in)
        self._last_audio_s: float | None = None  # clock time of the last frame with audio; None: never
        self._previous_read_audio = False
        self._clock = clock
        self._on_audio_started: Callable[[str, float], None] | None = None

    # -- event loop side --------------------------------------------------------------------------------------------

    def set_audio_started_handler(self, handler: Callable[[str, float], None] | None) -> None:
        """Call ``handler(item_id, clock_s)`` **on the sending thread** when a frame with an item's first audio after
        silence is handed to Discord (the end of the bot-side answer latency). It must be quick and thread-safe."""
        with self._lock:
            self._on_audio_started = handler

    def feed(self, item_id: str, pcm16_24k_mono: bytes) -> None:
        """Queue a chunk of an assistant item (24 kHz mono pcm16, any size; an odd trailing byte is carried)."""
        with self._lock:
            if self._closed:
                return
            if item_id == self._overflowed_item or self._buffered_bytes >= self._max_buffered_bytes:
                self._drop_input(item_id, len(pcm16_24k_mono))
                return
            if item_id != self._feed_item:
                self._end_feed_item()
                self._feed_item = item_id
            elif not self._started and self._buffered_bytes == 0 and self._played_bytes.get(item_id, 0) > 0:
                metrics.playback_underrun()  # this answer ran dry mid-way: the listener heard a gap
            out = self._resampler.process(pcm16_24k_mono)
            self._resampler_holds = True
            self._append(item_id, out)

    def start_lead_in(self) -> None:
        """An answer has been asked for: start the anti-clipping lead silence now, while the model thinks (see the
        module docstring). Does nothing while audio plays or soon after it (no lead silence is due then)."""
        with self._lock:
            if self._closed or self._lead_frames == 0 or self._lead_in_since_s is not None:
                return
            if self._buffered_bytes > 0 or self._resampler_holds or self._started or not self._idle_long_enough():
                return
            self._lead_in_since_s = self._clock()

    @property
    def is_active(self) -> bool:
        """True while the sender must read this source: audio is playing (:attr:`is_playing`) or a lead-in runs."""
        with self._lock:
            return self._playing_locked() or self._lead_in_running()

    def clear(self) -> dict[str, float]:
        """Drop all audio not yet played; the next ``read()`` is silence.

        Returns:
            ``{item_id: ms played}`` for every item that was cut (had audio still queued) or was playing.
        """
        with self._lock:
            cut: set[str] = {item for item, _ in self._segments}
            if self._feed_item is not None and self._resampler_holds:
                cut.add(self._feed_item)
            if self._last_read_item is not None:
                cut.add(self._last_read_item)
            self._segments.clear()
            self._head_offset = 0
            self._buffered_bytes = 0
            self._resampler.reset()
            self._resampler_holds = False
            self._feed_item = None
            self._overflowed_item = None
            self._started = False
            self._waited_reads = 0
            self._lead_left = 0
            self._lead_in_since_s = None
            self._last_read_item = None
            return {item: self._played_bytes.get(item, 0) / self._bytes_per_ms for item in sorted(cut)}

    def played_ms(self, item_id: str) -> float:
        """Milliseconds of ``item_id`` handed to the player so far (0 for an unknown item)."""
        with self._lock:
            return self._played_bytes.get(item_id, 0) / self._bytes_per_ms

    @property
    def is_playing(self) -> bool:
        """True while audio is queued or the last frame read held audio."""
        with self._lock:
            return self._playing_locked()

    @property
    def dropped_ms(self) -> float:
        """Answer audio refused because the queue was full (input milliseconds, since the source was made)."""
        with self._lock:
            return self._dropped_input_bytes / _INPUT_BYTES_PER_MS

    @property
    def buffered_ms(self) -> float:
        """Audio queued and not yet read."""
        with self._lock:
            return self._buffered_bytes / self._bytes_per_ms

    def close(self) -> None:
        """End the source: ``read()`` returns ``b""`` from now on, which stops the sender or discord.py's player."""
        with self._lock:
            self._closed = True
            self._segments.clear()
            self._buffered_bytes = 0
            self._lead_in_since_s = None

    # -- sending thread ---------------------------------------------------------------------------------------------

    def is_opus(self) -> bool:
        return False

    def read(self) -> bytes:
        """Exactly one 20 ms frame in :attr:`pcm_format` (:attr:`silence_frame` when silent). Runs on the sending
        thread."""
        started: tuple[Callable[[str, float], None], str, float] | None = None
        with self._lock:
            frame = self._read_locked()
            audio = frame is not self.silence_frame and self._last_read_item is not None
            if audio:
                now_s = self._clock()
                if not self._previous_read_audio and self._on_audio_started is not None:
                    started = (self._on_audio_started, self._last_read_item or "", now_s)
                self._last_audio_s = now_s
            self._previous_read_audio = audio
        if started is not None:
            handler, item_id, at_s = started
            try:
                handler(item_id, at_s)
            except Exception:
                _log.exception("audio-started handler failed")
        return frame

    def _read_locked(self) -> bytes:
        if self._closed:
            return b""
        if not self._started:
            lead_in = self._lead_in_running()
            pending = self._buffered_bytes > 0 or self._resampler_holds
            primed = (
                self._buffered_bytes >= self._prebuffer_bytes
                or (pending and self._waited_reads >= self._prime_reads)
                # the stream is already warm: the first frame goes out now (the answer streams ahead of real time)
                or (lead_in and self._buffered_bytes >= self._frame_bytes)
            )
            if not primed:
                if pending:
                    self._waited_reads += 1
                self._last_read_item = None
                return self.silence_frame
            self._started = True
            if lead_in:
                self._lead_left = 0  # the lead-in warmed the stream up: the answer goes out now
            elif self._idle_long_enough():
                self._lead_left = self._lead_frames
            self._lead_in_since_s = None
        if self._lead_left > 0:
            self._lead_left -= 1
            self._last_read_item = None
            return self.silence_frame
        if self._buffered_bytes < self._frame_bytes:
            # Running dry: the item's held-back resampler tail belongs to this frame.
            self._end_feed_item()
        frame = self._take(self._frame_bytes)
        if self._buffered_bytes == 0:
            # Drained exactly on a frame boundary: the held-back tail is the next frame.
            self._end_feed_item()
        if self._buffered_bytes == 0:
            # Underrun from here on: the next audio is primed again.
            self._started = False
            self._waited_reads = 0
        return frame + bytes(self._frame_bytes - len(frame))

    # -- helpers (lock held) ------------------------------------------------------------------------------------------

    def _playing_locked(self) -> bool:
        return self._buffered_bytes > 0 or self._last_read_item is not None or self._resampler_holds

    def _lead_in_running(self) -> bool:
        """A lead-in was started and has not outlived ``max_lead_in_ms`` (then it ends here)."""
        since_s = self._lead_in_since_s
        if since_s is None:
            return False
        if self._clock() - since_s >= self._max_lead_in_s:
            self._lead_in_since_s = None
            return False
        return True

    def _idle_long_enough(self) -> bool:
        """Silent for at least ``LEAD_SILENCE_AFTER_IDLE_MS`` by the clock, not by reads: a sender that skips idle
        sources (:class:`~bot.voice.sender.VoiceSender`) does not read them while they are quiet."""
        if self._last_audio_s is None:
            return True
        return (self._clock() - self._last_audio_s) * 1000 >= LEAD_SILENCE_AFTER_IDLE_MS

    def _drop_input(self, item_id: str, size: int) -> None:
        if item_id != self._overflowed_item:
            self._overflowed_item = item_id
            _log.warning(
                "playback queue full (%.0f s waiting): the rest of item %s is dropped",
                self._buffered_bytes / self._bytes_per_ms / 1000,
                item_id,
            )
        self._dropped_input_bytes += size

    def _append(self, item_id: str, data: bytes) -> None:
        if data:
            self._segments.append((item_id, data))
            self._buffered_bytes += len(data)

    def _end_feed_item(self) -> None:
        if self._feed_item is not None and self._resampler_holds:
            self._append(self._feed_item, self._resampler.flush())
        self._resampler_holds = False

    def _take(self, size: int) -> bytes:
        parts: list[bytes] = []
        item: str | None = None
        while size > 0 and self._segments:
            item, data = self._segments[0]
            chunk = data[self._head_offset : self._head_offset + size]
            parts.append(chunk)
            size -= len(chunk)
            self._head_offset += len(chunk)
            self._buffered_bytes -= len(chunk)
            self._count_played(item, len(chunk))
            if self._head_offset >= len(data):
                self._segments.popleft()
                self._head_offset = 0
        self._last_read_item = item
        return b"".join(parts)

    def _count_played(self, item_id: str, size: int) -> None:
        self._played_bytes[item_id] = self._played_bytes.get(item_id, 0) + size
        self._played_bytes.move_to_end(item_id)
        while len(self._played_bytes) > PLAYED_HISTORY_ITEMS:
            self._played_bytes.popitem(last=False)


class OpusPlaybackSource(PlaybackSource):
    """A :class:`PlaybackSource` that hands discord.py Opus packets, encoding only frames that hold audio.

    discord.py's player Opus-encodes every frame a PCM source returns, silence too: ~20 ms of CPU per second in
    every guild the bot sits in, talking or not (measured in ``bench/RESULTS.md``). Here silent frames (start-up,
    underruns, lead silence, idle) become Discord's three-byte Opus silence frame, which costs nothing to make; the
    player keeps its 20 ms clock either way. Encoding runs on the reading thread, as discord.py's own would, with
    :func:`~bot.voice.opus_encoder.answer_encoder`. By default the answer is encoded as it comes, 24 kHz mono
    (:data:`~bot.voice.opus_encoder.NATIVE_24K_MONO`: no resampler, a quarter of the CPU of 48 kHz stereo);
    ``encoder=DISCORD_48K_STEREO`` keeps discord.py's format.
    """

    def __init__(self, *, encoder: EncoderSettings = NATIVE_24K_MONO, **kwargs: Any) -> None:
        super().__init__(pcm_format=encoder.pcm_format, **kwargs)
        self.encoder_settings = encoder
        self._encoder = answer_encoder(encoder)
        self._frame_samples = encoder.frame_samples

    def is_opus(self) -> bool:
        return True

    def read(self) -> bytes:
        pcm = super().read()
        if not pcm:
            return b""  # closed: stops the player
        if pcm is self.silence_frame or pcm == self.silence_frame:
            return OPUS_SILENCE_FRAME
        packet: bytes = self._encoder.encode(pcm, self._frame_samples)
        return packet
