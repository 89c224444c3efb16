from __future__ import annotations

import struct

import pytest

from bot.voice.rtp import RtpParseError, is_rtcp, parse_rtp
from tests.voice.packets import rtp_header


def test_plain_header_fields() -> None:
    packet = parse_rtp(rtp_header(65535, 4_000_000_000, 0xDEADBEEF) + b"payload")
    assert (packet.sequence, packet.timestamp, packet.ssrc) == (65535, 4_000_000_000, 0xDEADBEEF)
    assert packet.payload_type == 0x78 and not packet.marker and not packet.padding
    assert packet.csrcs == () and packet.extension_profile is None and packet.extension_preamble == b""
    assert packet.header == rtp_header(65535, 4_000_000_000, 0xDEADBEEF)
    assert packet.payload == b"payload"


def test_csrcs_and_one_byte_extension() -> None:
    first = 0x80 | 0x10 | 2  # version 2, extension, two CSRCs
    fixed = struct.pack(">BBHII", first, 0x80 | 0x78, 7, 9, 11)
    csrcs = struct.pack(">II", 21, 22)
    preamble = struct.pack(">HH", 0xBEDE, 3)
    packet = parse_rtp(fixed + csrcs + preamble + b"rest")
    assert packet.csrcs == (21, 22)
    assert packet.marker
    assert packet.header == fixed + csrcs
    assert packet.extension_profile == 0xBEDE and packet.extension_words == 3 and packet.extension_body_bytes == 12
    assert packet.extension_preamble == preamble
    assert packet.payload == b"rest"


@pytest.mark.parametrize("second", [200, 201, 202, 203, 204])
def test_rtcp_is_recognised_and_refused(second: int) -> None:
    datagram = bytes([0x80, second]) + bytes(30)
    assert is_rtcp(datagram)
    with pytest.raises(RtpParseError, match="RTCP"):
        parse_rtp(datagram)


@pytest.mark.parametrize(
    ("datagram", "message"),
    [
        (b"", "runt"),
        (bytes(11), "runt"),
        (bytes([0x40, 0x78]) + bytes(10), "version 1"),
        (bytes([0x83, 0x78]) + bytes(10) + bytes(8), "CSRC"),
        (bytes([0x90, 0x78]) + bytes(10) + b"\xbe", "extension preamble"),
    ],
)
def test_malformed_packets_raise_parse_error(datagram: bytes, message: str) -> None:
    assert not is_rtcp(datagram) or len(datagram) < 2
    with pytest.raises(RtpParseError, match=message):
        parse_rtp(datagram)
