from __future__ import annotations

import struct

import pytest

from bot.voice.rtp import parse_rtp
from bot.voice.transport_crypto import RtpSizeDecryptor, TransportDecryptError, encrypt_rtpsize, key_bytes
from tests.voice.packets import KEY, _DiscordPyEncryptor, discordpy_encrypt, rtp_header


def test_decrypts_what_discordpy_encrypts() -> None:
    encryptor = _DiscordPyEncryptor(KEY, nonce=41)
    decryptor = RtpSizeDecryptor(list(KEY))
    for index, payload in enumerate([b"\xfc\x01\x02opus", bytes(range(200)), b"\xf8\xff\xfe"]):
        datagram = discordpy_encrypt(rtp_header(10 + index, 960 * index, 5), payload, encryptor)
        assert datagram[-4:] == struct.pack(">I", 41 + index)
        assert decryptor.decrypt(parse_rtp(datagram)) == payload


def test_mirror_encryptor_matches_discordpy_byte_for_byte() -> None:
    header = rtp_header(1, 2, 3)
    assert encrypt_rtpsize(header, b"hello", KEY, 99) == discordpy_encrypt(
        header, b"hello", _DiscordPyEncryptor(KEY, 99)
    )


def test_extension_preamble_is_authenticated_and_body_stripped() -> None:
    header = bytearray(rtp_header(5, 6, 7))
    header[0] |= 0x10
    header_with_preamble = bytes(header) + struct.pack(">HH", 0xBEDE, 2)
    body = b"\x10\x7f\x00\x00" + b"\x00\x00\x00\x00"  # an audio-level element and padding
    datagram = encrypt_rtpsize(header_with_preamble, b"OPUSDATA", KEY, 3, extension_body=body)
    assert RtpSizeDecryptor(KEY).decrypt(parse_rtp(datagram)) == b"OPUSDATA"
    # The preamble is part of the AAD: changing the declared length breaks authentication.
    tampered = bytearray(datagram)
    tampered[15] = 1
    with pytest.raises(TransportDecryptError, match="authentication"):
        RtpSizeDecryptor(KEY).decrypt(parse_rtp(bytes(tampered)))


def test_rtp_padding_is_removed() -> None:
    header = bytearray(rtp_header(5, 6, 7))
    header[0] |= 0x20
    datagram = encrypt_rtpsize(bytes(header), b"OPUS" + b"\x00\x00\x03", KEY, 1)
    assert RtpSizeDecryptor(KEY).decrypt(parse_rtp(datagram)) == b"OPUS"


def test_wrong_key_corruption_and_truncation_fail_cleanly() -> None:
    datagram = discordpy_encrypt(rtp_header(1, 2, 3), b"payload", _DiscordPyEncryptor(KEY))
    with pytest.raises(TransportDecryptError):
        RtpSizeDecryptor(bytes(32)).decrypt(parse_rtp(datagram))
    flipped = bytearray(datagram)
    flipped[14] ^= 0x01
    with pytest.raises(TransportDecryptError):
        RtpSizeDecryptor(KEY).decrypt(parse_rtp(bytes(flipped)))
    with pytest.raises(TransportDecryptError, match="cannot hold"):
        RtpSizeDecryptor(KEY).decrypt(parse_rtp(datagram[:12] + b"short"))
    # A changed header (sequence) is authenticated too.
    with pytest.raises(TransportDecryptError):
        RtpSizeDecryptor(KEY).decrypt(parse_rtp(rtp_header(9, 2, 3) + datagram[12:]))


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        key_bytes([1, 2, 3])
    with pytest.raises(ValueError, match="32 bytes"):
        RtpSizeDecryptor(bytes(33))
