"""RTP packets as Discord sends them: RTCP and runt detection, and the header (CSRCs, the 0xBEDE extension).

Pure: bytes in, a parsed :class:`RtpPacket` out; anything malformed raises :class:`RtpParseError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_HEADER_BYTES = 12
RTP_VERSION = 2
EXTENSION_PREAMBLE_BYTES = 4
#: The one-byte header-extension profile (RFC 8285) Discord uses.
ONE_BYTE_EXTENSION_PROFILE = 0xBEDE
#: RTCP packet types (SR, RR, SDES, BYE, APP) sit where RTP has marker + payload type.
RTCP_PACKET_TYPES = range(200, 205)

_FIXED = struct.Struct(">BBHII")
_PREAMBLE = struct.Struct(">HH")


class RtpParseError(ValueError):
    """A datagram is not a well-formed RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet split into its parts. ``payload`` is still transport-encrypted.

    Attributes:
        header: the fixed header and CSRC list (authenticated, not encrypted).
        extension_preamble: the 4-byte extension preamble (profile + length), or ``b""`` without extension.
        extension_words: the extension body length in 32-bit words (the body itself is inside the ciphertext).
        payload: everything after the header and preamble.
    """

    padding: bool
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    csrcs: tuple[int, ...]
    header: bytes
    extension_profile: int | None
    extension_preamble: bytes
    extension_words: int
    payload: bytes

    @property
    def extension_body_bytes(self) -> int:
        """Bytes of extension body at the start of the decrypted payload."""
        return self.extension_words * 4


def is_rtcp(datagram: bytes) -> bool:
    """True for RTCP packets (second byte 200..204), which share the socket with RTP."""
    return len(datagram) >= 2 and datagram[1] in RTCP_PACKET_TYPES


def parse_rtp(datagram: bytes) -> RtpPacket:
    """Split an RTP datagram into header, extension preamble and payload.

    Raises:
        RtpParseError: shorter than its header, not version 2, or an RTCP packet.
    """
    if len(datagram) < RTP_HEADER_BYTES:
        raise RtpParseError(f"runt: {len(datagram)} bytes is shorter than an RTP header")
    if is_rtcp(datagram):
        raise RtpParseError("RTCP packet, not RTP")
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(datagram)
    version = first >> 6
    if version != RTP_VERSION:
        raise RtpParseError(f"RTP version {version}, expected {RTP_VERSION}")
    csrc_count = first & 0x0F
    header_end = RTP_HEADER_BYTES + 4 * csrc_count
    if len(datagram) < header_end:
        raise RtpParseError(f"runt: {len(datagram)} bytes cannot hold {csrc_count} CSRCs")
    csrcs = struct.unpack_from(f">{csrc_count}I", datagram, RTP_HEADER_BYTES) if csrc_count else ()
    profile: int | None = None
    words = 0
    payload_start = header_end
    if first & 0x10:
        payload_start = header_end + EXTENSION_PREAMBLE_BYTES
        if len(datagram) < payload_start:
            raise RtpParseError("runt: extension bit set but no room for the extension preamble")
        profile, words = _PREAMBLE.unpack_from(datagram, header_end)
    return RtpPacket(
        padding=bool(first & 0x20),
        marker=bool(second & 0x80),
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        csrcs=tuple(csrcs),
        header=bytes(datagram[:header_end]),
        extension_profile=profile,
        extension_preamble=bytes(datagram[header_end:payload_start]),
        extension_words=words,
        payload=bytes(datagram[payload_start:]),
    )
