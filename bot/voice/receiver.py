"""The receive pipeline for one voice connection: datagram -> RTP -> transport decrypt -> DAVE -> jitter -> Opus.

:meth:`VoiceReceiver.receive_datagram` runs on discord.py's socket reader thread. It never raises: every bad
packet is counted in :class:`~bot.voice.metrics.VoiceMetrics` under a reason and dropped, without disturbing other
speakers. Decoded frames go to ``on_frame`` on that same thread, with their level (measured once, here); the caller
hands them to its event loop (``loop.call_soon_threadsafe``). The decoder chooses the format: the bot's voice client
decodes speakers straight to 24 kHz mono pcm16 (20 ms = 960 bytes), the Realtime API's format, for less than
decoding 48 kHz stereo, and with no resampler after it (``bench/FINDINGS.md``, section 5).

Packets from an SSRC that no SPEAKING event has mapped to a user yet are parked briefly (their user is needed for
DAVE and for attribution) and replayed once the mapping arrives.

It never invents audio. A packet whose payload is only RTP padding (Discord clients send bursts of them) holds no
Opus frame: it keeps its place in the sequence (so the jitter buffer sees no gap to conceal) but is never decoded
(counted ``empty_payload``). A network-duplicated packet is recognised before DAVE decryption (counted
``duplicate``), whose replay check would otherwise refuse it as a ``dave_failed``. Only real losses are concealed,
and those frames say so (``concealed=True``).

State is per SSRC and freed with it: a user's decoder and jitter buffer go when the user leaves
(:meth:`VoiceReceiver.forget_user`) or is mapped to a new SSRC (:meth:`VoiceReceiver.map_ssrc`).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import discord.opus

from bot.audio.level import rms_dbfs
from bot.voice.dave import OPUS_SILENCE, DaveDecryptStep
from bot.voice.jitter import DEFAULT_DEPTH_PACKETS, JitterBuffer, JitterCounts, JitterOutput
from bot.voice.libopus import OpusCodecError
from bot.voice.metrics import VoiceMetrics
from bot.voice.opus_decoder import FrameDecoder, speaker_decoder
from bot.voice.rtp import RTP_HEADER_BYTES, RtpParseError, is_rtcp, parse_rtp
from bot.voice.transport_crypto import RtpSizeDecryptor, TransportDecryptError

_log = logging.getLogger(__name__)

#: Payload type Discord uses for Opus.
OPUS_PAYLOAD_TYPE = 120
#: Unmapped SSRCs whose packets are parked, and packets parked per SSRC (25 × 20 ms = 500 ms).
MAX_PARKED_SSRCS = 8
MAX_PARKED_PACKETS = 25


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One decoded frame of one speaker, in the decoder's format, and its RMS level (measured once, here).
    ``concealed`` frames were synthesised for a lost packet (PLC or FEC)."""

    ssrc: int
    user_id: int | None
    pcm16: bytes
    concealed: bool
    level_dbfs: float


@dataclass
class _Stream:
    user_id: int | None
    decoder: FrameDecoder
    jitter: JitterBuffer
    counted: JitterCounts = field(default_factory=JitterCounts)


class VoiceReceiver:
    """Turns raw voice datagrams into per-speaker PCM.

    Args:
        secret_key: the session key from SESSION_DESCRIPTION, or ``None`` until it is known (packets are then
            dropped as ``no_key``).
        on_frame: called on the socket thread with each decoded frame.
        on_silence: called on the socket thread when a speaker sends the Opus silence frame (end of a talk spurt).
        dave: the DAVE step; ``None`` passes frames through (no E2EE).
        use_fec: recover a lost packet from the in-band FEC of the next one when it is already here.
        decoder_factory: one decoder per speaker; its output format is the frames' (48 kHz stereo by default; the
            voice client decodes to 24 kHz mono with :func:`~bot.voice.opus_decoder.speaker_decoder_24k_mono`).
    """

    def __init__(
        self,
        secret_key: bytes | Sequence[int] | None,
        *,
        on_frame: Callable[[DecodedFrame], None],
        on_silence: Callable[[int, int | None], None] | None = None,
        dave: DaveDecryptStep | None = None,
        metrics: VoiceMetrics | None = None,
        jitter_depth_packets: int = DEFAULT_DEPTH_PACKETS,
        use_fec: bool = True,
        decoder_factory: Callable[[], FrameDecoder] = speaker_decoder,
    ) -> None:
        self.metrics = metrics if metrics is not None else VoiceMetrics()
        self._on_frame = on_frame
        self._on_silence = on_silence
        self._dave = dave
        self._use_fec = use_fec
        self._jitter_depth = jitter_depth_packets
        self._decoder_factory = decoder_factory
        self._lock = threading.Lock()
        self._decryptor: RtpSizeDecryptor | None = None
        self._users: dict[int, int] = {}
        self._streams: dict[int, _Stream] = {}
        self._parked: dict[int, deque[tuple[int, bytes]]] = {}
        if secret_key is not None:
            self.set_secret_key(secret_key)

    # -- control, from the event loop -------------------------------------------------------------------------------

    def set_secret_key(self, secret_key: bytes | Sequence[int]) -> None:
        """Use a new session key (after SESSION_DESCRIPTION). Raises ``ValueError`` for a key of the wrong size."""
        decryptor = RtpSizeDecryptor(secret_key)
        with self._lock:
            self._decryptor = decryptor

    def map_ssrc(self, ssrc: int, user_id: int) -> None:
        """Record who sends on ``ssrc`` (from SPEAKING or CLIENT_CONNECT).

        A different user on a known SSRC gets a fresh decoder; a user who now sends on a new SSRC (they reconnected)
        loses the old one, with its decoder and jitter buffer: a user has one audio SSRC at a time.
        """
        with self._lock:
            old = self._users.get(ssrc)
            if old == user_id:
                return
            if old is not None:
                self._drop_stream(ssrc)
            for replaced in [s for s, u in self._users.items() if u == user_id]:
                del self._users[replaced]
                self._drop_stream(replaced)
                self._parked.pop(replaced, None)
            self._users[ssrc] = user_id

    def forget_user(self, user_id: int) -> None:
        """Drop a user's SSRCs, decoders and parked packets (CLIENT_DISCONNECT)."""
        with self._lock:
            for ssrc in [s for s, u in self._users.items() if u == user_id]:
                del self._users[ssrc]
                self._drop_stream(ssrc)
                self._parked.pop(ssrc, None)

    @property
    def streams_held(self) -> int:
        """SSRCs with a decoder and a jitter buffer."""
        with self._lock:
            return len(self._streams)

    def user_for(self, ssrc: int) -> int | None:
        """The user mapped to ``ssrc``, if any."""
        with self._lock:
            return self._users.get(ssrc)

    def flush(self) -> None:
        """Decode whatever the jitter buffers still hold (call when the room has gone quiet)."""
        with self._lock:
            for ssrc, stream in list(self._streams.items()):
                self._decode(ssrc, stream, stream.jitter.flush())

    # -- the socket thread ---------------------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes) -> None:
        """Process one UDP datagram. Runs on the socket thread; never raises."""
        try:
            with self._lock:
                self._receive(bytes(data))
        except Exception:
            self.metrics.add("internal_error")
            _log.exception("voice receive failed on a packet; dropped")

    def _receive(self, data: bytes) -> None:
        if is_rtcp(data):
            self.metrics.add("rtcp")
            return
        if len(data) < RTP_HEADER_BYTES:
            self.metrics.add("runt")
            return
        try:
            packet = parse_rtp(data)
        except RtpParseError:
            self.metrics.add("bad_rtp")
            return
        if packet.payload_type != OPUS_PAYLOAD_TYPE:
            self.metrics.add("not_opus")
            return
        if self._decryptor is None:
            self.metrics.add("no_key")
            return
        try:
            media = self._decryptor.decrypt(packet)
        except TransportDecryptError:
            self.metrics.add("decrypt_failed")
            return
        ssrc = packet.ssrc
        if ssrc not in self._users:
            self._park(ssrc, packet.sequence, media)
            return
        parked = self._parked.pop(ssrc, None)
        if parked:
            for sequence, earlier in parked:
                self._accept(ssrc, sequence, earlier)
        self._accept(ssrc, packet.sequence, media)

    def _park(self, ssrc: int, sequence: int, media: bytes) -> None:
        self.metrics.add("unknown_ssrc")
        queue = self._parked.get(ssrc)
        if queue is None:
            if len(self._parked) >= MAX_PARKED_SSRCS:
                oldest = next(iter(self._parked))
                self.metrics.add("unknown_ssrc_dropped", len(self._parked.pop(oldest)))
            queue = self._parked[ssrc] = deque()
        if len(queue) >= MAX_PARKED_PACKETS:
            queue.popleft()
            self.metrics.add("unknown_ssrc_dropped")
        queue.append((sequence, media))

    def _accept(self, ssrc: int, sequence: int, media: bytes) -> None:
        user_id = self._users.get(ssrc)
        stream = self._streams.get(ssrc)
        if stream is None:
            stream = _Stream(user_id, self._decoder_factory(), JitterBuffer(self._jitter_depth))
            self._streams[ssrc] = stream
        if stream.jitter.has_seen(sequence):
            self.metrics.add("duplicate")
            return
        opus: bytes | None = media
        if not media:
            # Padding only: no frame to decode, but it holds its sequence number, so no gap to conceal either.
            self.metrics.add("empty_payload")
        elif self._dave is not None:
            opus = self._dave.process(user_id, media)
        if opus is None:
            return  # DAVE refused it (counted): a real loss, concealed as such
        self._decode(ssrc, stream, stream.jitter.push(sequence, opus))

    def _drop_stream(self, ssrc: int) -> None:
        """Forget ``ssrc``'s decoder and jitter buffer, releasing the decoder's native state now (lock held)."""
        stream = self._streams.pop(ssrc, None)
        if stream is not None:
            close = getattr(stream.decoder, "close", None)
            if callable(close):
                close()

    def _decode(self, ssrc: int, stream: _Stream, slots: list[JitterOutput]) -> None:
        self._count_jitter(stream)
        for index, slot in enumerate(slots):
            if slot.payload == b"":
                continue  # a padding-only packet (counted on arrival)
            if slot.payload == OPUS_SILENCE:
                self.metrics.add("silence")
                if self._on_silence is not None:
                    self._on_silence(ssrc, stream.user_id)
                continue
            following = (slots[index + 1].payload or None) if index + 1 < len(slots) else None
            try:
                if slot.payload is not None:
                    pcm = stream.decoder.decode(slot.payload, fec=False)
                elif self._use_fec and following is not None and following != OPUS_SILENCE:
                    pcm = stream.decoder.decode(following, fec=True)
                    self.metrics.add("fec")
                else:
                    pcm = stream.decoder.decode(None, fec=False)
                    self.metrics.add("plc")
            except (OpusCodecError, discord.opus.OpusError):
                self.metrics.add("opus_error")
                continue
            if not pcm:
                self.metrics.add("opus_empty")
                continue
            self.metrics.add("decoded")
            self._on_frame(DecodedFrame(ssrc, stream.user_id, pcm, slot.payload is None, rms_dbfs(pcm)))

    def _count_jitter(self, stream: _Stream) -> None:
        """Add what the jitter buffer counted since last time to the metrics. Runs for every packet, so it compares
        the four counters directly (``dataclasses.astuple`` deep-copies: ~5% of the receive path, bench part 3)."""
        now, before = stream.jitter.counts, stream.counted
        if now == before:
            return
        for name, new, old in (
            ("duplicate", now.duplicate, before.duplicate),
            ("late", now.late, before.late),
            ("lost", now.lost, before.lost),
            ("resync", now.resync, before.resync),
        ):
            if new != old:
                self.metrics.add(name, new - old)
        stream.counted = JitterCounts(now.duplicate, now.late, now.lost, now.resync)
