"""Transport decryption of ``aead_xchacha20_poly1305_rtpsize`` voice packets (the inverse of discord.py's send path).

Layout: ``header | ext preamble | ciphertext+tag | nonce counter (4 bytes, big-endian)``. The AAD is the header
plus the extension preamble; the 24-byte nonce is the 4-byte counter followed by zeros. The decrypted plaintext
starts with the extension body (``extension_words`` × 4 bytes), which is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

from nacl import bindings
from nacl.exceptions import CryptoError

from bot.voice.rtp import RtpPacket

MODE = "aead_xchacha20_poly1305_rtpsize"
KEY_BYTES = 32
NONCE_BYTES = 24
NONCE_SUFFIX_BYTES = 4
TAG_BYTES = 16


class TransportDecryptError(ValueError):
    """A packet failed authentication or is too short to hold a tag and nonce."""


def key_bytes(secret_key: bytes | Sequence[int]) -> bytes:
    """The 32-byte key from Discord's ``secret_key`` (a list of ints) or bytes.

    Raises:
        ValueError: not exactly 32 bytes.
    """
    key = bytes(secret_key)
    if len(key) != KEY_BYTES:
        raise ValueError(f"secret_key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


class RtpSizeDecryptor:
    """Decrypts ``aead_xchacha20_poly1305_rtpsize`` packets with one session key. Stateless per packet."""

    mode = MODE

    def __init__(self, secret_key: bytes | Sequence[int]) -> None:
        self._key = key_bytes(secret_key)

    def decrypt(self, packet: RtpPacket) -> bytes:
        """The media payload (Opus, or a DAVE frame) of ``packet``, extension body and RTP padding removed.

        Raises:
            TransportDecryptError: authentication failed or the packet is malformed.
        """
        data = packet.payload
        if len(data) < TAG_BYTES + NONCE_SUFFIX_BYTES:
            raise TransportDecryptError(f"payload of {len(data)} bytes cannot hold a tag and a nonce")
        nonce = data[-NONCE_SUFFIX_BYTES:] + bytes(NONCE_BYTES - NONCE_SUFFIX_BYTES)
        aad = packet.header + packet.extension_preamble
        try:
            plain: bytes = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                data[:-NONCE_SUFFIX_BYTES], aad, nonce, self._key
            )
        except CryptoError as exc:
            raise TransportDecryptError("authentication failed (wrong key or corrupted packet)") from exc
        start = packet.extension_body_bytes
        end = len(plain)
        if packet.padding and plain:
            end -= plain[-1]
        if start > end:
            raise TransportDecryptError("extension body or padding longer than the payload")
        return plain[start:end]


def encrypt_rtpsize(
    header: bytes, payload: bytes, secret_key: bytes | Sequence[int], nonce_counter: int, *, extension_body: bytes = b""
) -> bytes:
    """Build an encrypted packet the way Discord does (used by the loopback peer and by tests).

    ``header`` is the 12-byte RTP header (+CSRCs, + the 4-byte extension preamble when it has the X bit);
    ``extension_body`` is encrypted ahead of ``payload``.
    """
    nonce = nonce_counter.to_bytes(NONCE_SUFFIX_BYTES, "big")
    sealed: bytes = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        extension_body + payload, header, nonce + bytes(NONCE_BYTES - NONCE_SUFFIX_BYTES), key_bytes(secret_key)
    )
    return header + sealed + nonce
