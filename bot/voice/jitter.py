"""A per-SSRC jitter buffer: reorders by RTP sequence, drops duplicates and late packets, marks losses.

Packet-driven and pure: :meth:`JitterBuffer.push` returns what can be played now, in order. A packet that is next
in sequence goes out at once; a gap is waited out until ``depth_packets`` later packets are held (at 20 ms per
packet, depth 3 ≈ 60 ms), then each missing packet becomes a ``None`` entry (for decoder loss concealment).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

SEQUENCE_MODULO = 1 << 16
#: Default depth: 3 packets of 20 ms.
DEFAULT_DEPTH_PACKETS = 3
#: Gaps longer than this are a resynchronisation (new stream, long outage), not losses to conceal one by one.
DEFAULT_MAX_CONCEALED_PACKETS = 5
#: Released sequence numbers remembered to tell a duplicate of a played packet from a late one.
RECENT_SEQUENCES = 64


def sequence_delta(later: int, earlier: int) -> int:
    """Signed distance from ``earlier`` to ``later`` in 16-bit sequence space (-32768..32767)."""
    return (later - earlier + SEQUENCE_MODULO // 2) % SEQUENCE_MODULO - SEQUENCE_MODULO // 2


@dataclass(frozen=True, slots=True)
class JitterOutput:
    """One slot of the played stream: a payload, or ``None`` for a lost packet."""

    sequence: int
    payload: bytes | None


@dataclass
class JitterCounts:
    """What the buffer dropped or concealed."""

    duplicate: int = 0
    late: int = 0
    lost: int = 0
    resync: int = 0


class JitterBuffer:
    """Reorders one SSRC's packets. Not thread-safe: one owner (the socket thread)."""

    def __init__(
        self,
        depth_packets: int = DEFAULT_DEPTH_PACKETS,
        max_concealed_packets: int = DEFAULT_MAX_CONCEALED_PACKETS,
    ) -> None:
        if depth_packets < 1:
            raise ValueError(f"depth_packets must be at least 1, got {depth_packets}")
        self.depth_packets = depth_packets
        self.max_concealed_packets = max_concealed_packets
        self.counts = JitterCounts()
        self._held: dict[int, bytes] = {}
        self._next: int | None = None
        self._recent: deque[int] = deque(maxlen=RECENT_SEQUENCES)

    @property
    def held_packets(self) -> int:
        """Packets waiting for a gap before them to fill."""
        return len(self._held)

    def has_seen(self, sequence: int) -> bool:
        """True if ``sequence`` is held or was recently played: a copy of it is a duplicate. Call before any costly
        step (DAVE decryption refuses a replayed frame, which would look like a decryption failure)."""
        sequence %= SEQUENCE_MODULO
        return sequence in self._held or sequence in self._recent

    def push(self, sequence: int, payload: bytes) -> list[JitterOutput]:
        """Add a packet; returns the slots now ready, in sequence order."""
        sequence %= SEQUENCE_MODULO
        if self._next is None:
            self._next = sequence
        delta = sequence_delta(sequence, self._next)
        if delta < 0:
            if sequence in self._recent:
                self.counts.duplicate += 1
                return []
            if delta >= -RECENT_SEQUENCES:
                self.counts.late += 1
                return []
            # Far behind: the sender restarted its sequence. Start over from this packet.
            return self._resync(sequence, payload)
        if sequence in self._held:
            self.counts.duplicate += 1
            return []
        if delta > SEQUENCE_MODULO // 4:
            return self._resync(sequence, payload)
        self._held[sequence] = payload
        return self._release()

    def flush(self) -> list[JitterOutput]:
        """Everything held, in order, gaps skipped (not concealed): call when the stream has gone quiet."""
        if not self._held or self._next is None:
            return []
        base = self._next
        order = sorted(self._held, key=lambda s: sequence_delta(s, base))
        out = [JitterOutput(s, self._held[s]) for s in order]
        self._recent.extend(order)
        self._held.clear()
        self._next = (order[-1] + 1) % SEQUENCE_MODULO
        return out

    def reset(self) -> None:
        """Forget held packets and the expected sequence."""
        self._held.clear()
        self._recent.clear()
        self._next = None

    def _resync(self, sequence: int, payload: bytes) -> list[JitterOutput]:
        out = self.flush()
        self.counts.resync += 1
        self._next = sequence
        self._held[sequence] = payload
        return out + self._release()

    def _release(self) -> list[JitterOutput]:
        out: list[JitterOutput] = []
        assert self._next is not None
        while self._held:
            payload = self._held.pop(self._next, None)
            if payload is not None:
                out.append(JitterOutput(self._next, payload))
                self._recent.append(self._next)
                self._next = (self._next + 1) % SEQUENCE_MODULO
                continue
            if len(self._held) < self.depth_packets:
                break
            base = self._next
            earliest = min(self._held, key=lambda s: sequence_delta(s, base))
            gap = sequence_delta(earliest, base)
            self.counts.lost += gap
            concealed = min(gap, self.max_concealed_packets)
            for offset in range(gap - concealed, gap):
                out.append(JitterOutput((base + offset) % SEQUENCE_MODULO, None))
            self._next = earliest
        return out
