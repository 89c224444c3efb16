from __future__ import annotations

import pytest

from bot.voice.jitter import JitterBuffer, JitterOutput, sequence_delta


def played(outputs: list[JitterOutput]) -> list[tuple[int, bytes | None]]:
    return [(o.sequence, o.payload) for o in outputs]


def feed(buffer: JitterBuffer, sequences: list[int]) -> list[tuple[int, bytes | None]]:
    out: list[tuple[int, bytes | None]] = []
    for s in sequences:
        out += played(buffer.push(s, bytes([s % 256])))
    return out


def test_in_order_packets_go_out_immediately() -> None:
    buffer = JitterBuffer(depth_packets=3)
    for s in range(10, 15):
        assert played(buffer.push(s, b"x")) == [(s, b"x")]
    assert buffer.held_packets == 0


def test_reordered_packets_are_put_back_in_order() -> None:
    buffer = JitterBuffer(depth_packets=3)
    out = feed(buffer, [1, 3, 2, 5, 4, 6])
    assert [s for s, _ in out] == [1, 2, 3, 4, 5, 6]
    assert all(p is not None for _, p in out)
    assert buffer.counts.lost == 0


def test_duplicates_and_late_packets_are_dropped_and_counted() -> None:
    buffer = JitterBuffer(depth_packets=3)
    out = feed(buffer, [1, 2, 2, 4, 4, 3, 1])
    assert [s for s, _ in out] == [1, 2, 3, 4]
    assert buffer.counts.duplicate == 3  # 2 after it was played, 4 while held, 1 after it was played
    assert buffer.counts.late == 0


def test_loss_becomes_a_concealment_slot_after_the_depth() -> None:
    buffer = JitterBuffer(depth_packets=3)
    assert feed(buffer, [1, 3, 4]) == [(1, b"\x01")]
    out = feed(buffer, [5])
    assert out == [(2, None), (3, b"\x03"), (4, b"\x04"), (5, b"\x05")]
    assert buffer.counts.lost == 1
    # The lost packet arriving afterwards is late.
    assert feed(buffer, [2]) == []
    assert buffer.counts.late == 1


def test_long_gap_conceals_at_most_the_cap() -> None:
    buffer = JitterBuffer(depth_packets=2, max_concealed_packets=3)
    feed(buffer, [100])
    out = feed(buffer, [120, 121])
    assert out[:3] == [(117, None), (118, None), (119, None)]
    assert [s for s, p in out if p is not None] == [120, 121]
    assert buffer.counts.lost == 19


def test_sequence_wraps_around() -> None:
    buffer = JitterBuffer(depth_packets=3)
    out = feed(buffer, [65534, 0, 65535, 1])
    assert [s for s, _ in out] == [65534, 65535, 0, 1]
    assert sequence_delta(0, 65535) == 1 and sequence_delta(65535, 0) == -1


def test_sender_restart_resynchronises() -> None:
    buffer = JitterBuffer(depth_packets=3)
    feed(buffer, [30000, 30001])
    out = feed(buffer, [5, 6])
    assert [s for s, _ in out] == [5, 6]
    assert buffer.counts.resync == 1


def test_flush_releases_held_packets_in_order() -> None:
    buffer = JitterBuffer(depth_packets=5)
    assert feed(buffer, [1, 4, 3]) == [(1, b"\x01")]
    assert played(buffer.flush()) == [(3, b"\x03"), (4, b"\x04")]
    assert buffer.flush() == []
    assert feed(buffer, [5]) == [(5, b"\x05")]


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth_packets"):
        JitterBuffer(depth_packets=0)


def test_has_seen_knows_held_and_played_sequences_only() -> None:
    buffer = JitterBuffer(depth_packets=3)
    buffer.push(10, b"a")
    buffer.push(12, b"c")  # held: 11 is missing
    assert buffer.has_seen(10) and buffer.has_seen(12) and buffer.has_seen(12 + 65536)
    assert not buffer.has_seen(11) and not buffer.has_seen(13)
    assert buffer.counts.duplicate == 0  # a query, not a count
