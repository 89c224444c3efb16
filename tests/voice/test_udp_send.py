"""Sending a datagram with the GIL held: real UDP sockets on loopback, and the connection state that uses it."""

from __future__ import annotations

import ctypes
import errno
import socket
from collections.abc import Iterator

import pytest

from bot.voice import udp_send
from bot.voice.connection_state import ReceivingConnectionState
from bot.voice.udp_send import bind_libc_send, send_datagram


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(receiver, sender): the sender is non-blocking and connected to the receiver, as discord.py's voice socket."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2.0)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setblocking(False)
    sender.connect(receiver.getsockname())
    try:
        yield receiver, sender
    finally:
        receiver.close()
        sender.close()


def test_libc_send_is_bound_on_this_platform() -> None:
    assert bind_libc_send() is not None


def test_each_packet_arrives_as_one_datagram_byte_for_byte_in_order(pair: tuple[socket.socket, socket.socket]) -> None:
    receiver, sender = pair
    packets = [bytes([n]) * (12 + n) for n in range(20)] + [b"\x00" * 1200, bytes(range(256))]
    for packet in packets:
        send_datagram(sender, packet)
    send_datagram(sender, bytearray(b"\x80\x78 as discord.py builds it"))
    assert [receiver.recv(2048) for _ in packets] == packets
    assert receiver.recv(2048) == b"\x80\x78 as discord.py builds it"


def test_a_closed_socket_raises_oserror_like_socket_send(pair: tuple[socket.socket, socket.socket]) -> None:
    _receiver, sender = pair
    sender.close()
    with pytest.raises(OSError) as caught:
        send_datagram(sender, b"\x80" * 20)
    assert caught.value.errno == errno.EBADF


def test_an_unconnected_socket_raises_oserror_with_the_system_errno() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as unconnected:
        unconnected.setblocking(False)
        with pytest.raises(OSError) as caught:
            send_datagram(unconnected, b"\x80" * 20)
        with pytest.raises(OSError) as expected:
            unconnected.send(b"\x80" * 20)
    assert caught.value.errno == expected.value.errno == errno.EDESTADDRREQ


def test_a_datagram_too_large_raises_the_same_error_as_socket_send(pair: tuple[socket.socket, socket.socket]) -> None:
    _receiver, sender = pair
    with pytest.raises(OSError) as caught:
        send_datagram(sender, bytes(70_000))
    with pytest.raises(OSError) as expected:
        sender.send(bytes(70_000))
    assert caught.value.errno == expected.value.errno == errno.EMSGSIZE


def test_a_send_that_would_wait_raises_blocking_io_error(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full socket buffer (EAGAIN) cannot be provoked on loopback UDP, which drops instead; libc's answer is."""

    def would_block(_fd: int, _data: bytes, _size: int, _flags: int) -> int:
        ctypes.set_errno(errno.EAGAIN)
        return -1

    _receiver, sender = pair
    monkeypatch.setattr(udp_send, "bind_libc_send", lambda: would_block)
    with pytest.raises(BlockingIOError):
        send_datagram(sender, b"\x80" * 20)


def test_without_libc_it_falls_back_to_socket_send(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver, sender = pair
    monkeypatch.setattr(udp_send, "bind_libc_send", lambda: None)
    send_datagram(sender, b"fallback")
    assert receiver.recv(2048) == b"fallback"


def test_the_bots_connection_state_sends_its_packets_through_it(pair: tuple[socket.socket, socket.socket]) -> None:
    receiver, sender = pair
    state = object.__new__(ReceivingConnectionState)  # only the socket matters to send_packet
    state.socket = sender
    state.send_packet(b"\x80\x78rtp packet")
    assert receiver.recv(2048) == b"\x80\x78rtp packet"
