"""The MLS messages a DAVE voice server sends and reads, encoded per RFC 9420 (test support for the loopback gateway).

Discord's voice gateway is the MLS *external sender* of every call's group (RFC 9420 §12.1.8.1; DAVE protocol
"External Sender"): it hands members its signature key (opcode 25), proposes Add and Remove as ``PublicMessage``\\ s
signed with that key (opcode 27), and relays the commits and welcomes members produce (opcodes 28-30). This module
is that role's wire format, nothing more:

- TLS presentation language (RFC 9420 §2.1): big-endian integers, ``opaque x<V>`` vectors with a QUIC-style varint
  length (1, 2 or 4 bytes).
- :class:`ExternalSender`: a P-256 ECDSA key (ciphersuite ``MLS_128_DHKEMP256_AES128GCM_SHA256_P256``) and a basic
  credential; :meth:`~ExternalSender.propose_add` / :meth:`~ExternalSender.propose_remove` build
  ``MLSMessage(PublicMessage(FramedContent(sender = external 0, proposal)))``, signed with ``SignWithLabel(key,
  "FramedContentTBS", FramedContentTBS)``. For an external sender the TBS carries no ``GroupContext`` (§6.1).
- Readers for what members send: a key package (whose basic credential is the member's user id, big-endian),
  and a commit with its optional welcome (opcode 28 concatenates them), down to the proposal references the commit
  covers, so the server can tell which of its proposals a commit applied.

``davey`` checks all of it: a proposal signed with any key but the package's, for another group or epoch, or
malformed, is refused.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

MLS_VERSION_10 = 1
CIPHERSUITE_P256 = 2  # MLS_128_DHKEMP256_AES128GCM_SHA256_P256, DAVE protocol version 1
WIRE_PUBLIC_MESSAGE = 1
SENDER_MEMBER = 1
SENDER_EXTERNAL = 2
CONTENT_PROPOSAL = 2
CONTENT_COMMIT = 3
PROPOSAL_ADD = 1
PROPOSAL_UPDATE = 2
PROPOSAL_REMOVE = 3
PROPOSAL_OR_REF_PROPOSAL = 1
PROPOSAL_OR_REF_REFERENCE = 2
CREDENTIAL_BASIC = 1
LEAF_SOURCE_KEY_PACKAGE = 1
LEAF_SOURCE_UPDATE = 2
LEAF_SOURCE_COMMIT = 3


class MlsDecodeError(ValueError):
    """Bytes that are not the MLS structure they were read as."""


# -- TLS presentation language ----------------------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """The variable-size length of RFC 9420 §2.1.2 (the top two bits say 1, 2 or 4 bytes)."""
    if value < 0 or value >= 1 << 30:
        raise ValueError(f"{value} does not fit an MLS varint")
    if value < 1 << 6:
        return bytes([value])
    if value < 1 << 14:
        return struct.pack(">H", 0x4000 | value)
    return struct.pack(">I", 0x8000_0000 | value)


def opaque(data: bytes) -> bytes:
    """``opaque data<V>``: the varint length, then the bytes."""
    return encode_varint(len(data)) + data


class TlsReader:
    """Reads TLS-encoded fields from ``data`` front to back; every read past the end raises :class:`MlsDecodeError`."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.offset + size > len(self.data):
            raise MlsDecodeError(f"needs {size} bytes at offset {self.offset}, has {len(self.data) - self.offset}")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack(">H", self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack(">Q", self.take(8))[0]
        return value

    def varint(self) -> int:
        first = self.u8()
        prefix = first >> 6
        if prefix == 0:
            return first
        if prefix == 1:
            return ((first & 0x3F) << 8) | self.u8()
        if prefix == 2:
            return ((first & 0x3F) << 24) | int.from_bytes(self.take(3), "big")
        raise MlsDecodeError("varint with the reserved 0b11 prefix")

    def opaque(self) -> bytes:
        return self.take(self.varint())

    def optional_present(self) -> bool:
        flag = self.u8()
        if flag > 1:
            raise MlsDecodeError(f"optional<T> presence byte {flag}")
        return flag == 1

    @property
    def done(self) -> bool:
        return self.offset == len(self.data)

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.offset)


def ref_hash(label: bytes, value: bytes) -> bytes:
    """``RefHash(label, value)`` of RFC 9420 §5.2 with the ciphersuite's hash (SHA-256)."""
    return hashlib.sha256(opaque(label) + opaque(value)).digest()


# -- the external sender ----------------------------------------------------------------------------------------------


def group_id_for_channel(channel_id: int) -> bytes:
    """A DAVE group's id: the channel (the MLS group of the call) as a big-endian 64-bit integer."""
    return struct.pack(">Q", channel_id)


def basic_credential(identity: bytes) -> bytes:
    return struct.pack(">H", CREDENTIAL_BASIC) + opaque(identity)


class ExternalSender:
    """The voice server's MLS identity: a P-256 signature key and a basic credential.

    Args:
        private_key: the signature key; a new one by default.
        identity: the credential's identity bytes (any; Discord's members check only that the group's external
            sender equals the package they were sent).
    """

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None, identity: bytes = b"voice") -> None:
        self.private_key = private_key if private_key is not None else ec.generate_private_key(ec.SECP256R1())
        self.identity = identity

    @property
    def signature_public_key(self) -> bytes:
        """The key as MLS carries it for ECDSA: the uncompressed SEC1 point."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def package(self) -> bytes:
        """``ExternalSender { SignaturePublicKey signature_key; Credential credential; }`` (the body of opcode 25)."""
        return opaque(self.signature_public_key) + basic_credential(self.identity)

    def propose_add(self, group_id: bytes, epoch: int, key_package: bytes) -> bytes:
        """An external Add proposal for the member whose (raw, unframed) ``KeyPackage`` is given."""
        return self._proposal(group_id, epoch, struct.pack(">H", PROPOSAL_ADD) + unframe_key_package(key_package))

    def propose_remove(self, group_id: bytes, epoch: int, leaf_index: int) -> bytes:
        """An external Remove proposal for the member at ``leaf_index``."""
        return self._proposal(group_id, epoch, struct.pack(">HI", PROPOSAL_REMOVE, leaf_index))

    def _proposal(self, group_id: bytes, epoch: int, proposal: bytes) -> bytes:
        content = (
            opaque(group_id)
            + struct.pack(">QBI", epoch, SENDER_EXTERNAL, 0)  # epoch, Sender { external, sender_index 0 }
            + opaque(b"")  # authenticated_data
            + bytes([CONTENT_PROPOSAL])
            + proposal
        )
        header = struct.pack(">HH", MLS_VERSION_10, WIRE_PUBLIC_MESSAGE)
        # FramedContentTBS = version, wire_format, content (no GroupContext for an external sender), signed with label.
        signature = self.sign_with_label(b"FramedContentTBS", header + content)
        # PublicMessage = content, FramedContentAuthData { signature } (no confirmation tag for a proposal), no
        # membership tag (the sender is not a member).
        return header + content + opaque(signature)

    def sign_with_label(self, label: bytes, content: bytes) -> bytes:
        """``SignWithLabel`` (RFC 9420 §5.1.2): ECDSA P-256 / SHA-256 over ``SignContent``, DER-encoded."""
        sign_content = opaque(b"MLS 1.0 " + label) + opaque(content)
        return self.private_key.sign(sign_content, ec.ECDSA(hashes.SHA256()))


def proposals_vector(messages: list[bytes]) -> bytes:
    """``MLSMessage proposal_messages<V>`` of opcode 27 (append)."""
    return opaque(b"".join(messages))


def proposal_ref(message: bytes) -> bytes:
    """A proposal's reference (RFC 9420 §5.2): ``RefHash("MLS 1.0 Proposal Reference", AuthenticatedContent)``,
    where the ``AuthenticatedContent`` of a ``PublicMessage`` is the message without its protocol version."""
    if struct.unpack_from(">HH", message) != (MLS_VERSION_10, WIRE_PUBLIC_MESSAGE):
        raise MlsDecodeError("not an MLS 1.0 PublicMessage")
    return ref_hash(b"MLS 1.0 Proposal Reference", message[2:])


# -- reading what members send ----------------------------------------------------------------------------------------


def unframe_key_package(data: bytes) -> bytes:
    """The ``KeyPackage`` itself, whether sent bare (as ``davey`` does) or framed as an ``MLSMessage``."""
    if len(data) >= 4 and struct.unpack_from(">HH", data) == (MLS_VERSION_10, 5):  # mls_key_package wire format
        return data[4:]
    return data


@dataclass(frozen=True)
class KeyPackageInfo:
    """What the server checks in a key package before proposing to add its member."""

    cipher_suite: int
    user_id: int
    signature_public_key: bytes


def read_key_package(data: bytes) -> KeyPackageInfo:
    """Parse a ``KeyPackage`` (RFC 9420 §10); the basic credential's identity is the member's user id."""
    reader = TlsReader(unframe_key_package(data))
    version, cipher_suite = reader.u16(), reader.u16()
    if version != MLS_VERSION_10:
        raise MlsDecodeError(f"key package version {version}")
    reader.opaque()  # init_key
    leaf = _read_leaf_node(reader)
    reader.opaque()  # extensions
    reader.opaque()  # signature
    if not reader.done:
        raise MlsDecodeError("bytes after the key package")
    if leaf.credential_type != CREDENTIAL_BASIC or len(leaf.identity) != 8:
        raise MlsDecodeError("a DAVE key package has a basic credential holding a 64-bit user id")
    return KeyPackageInfo(cipher_suite, int.from_bytes(leaf.identity, "big"), leaf.signature_key)


@dataclass(frozen=True)
class _LeafNode:
    signature_key: bytes
    credential_type: int
    identity: bytes


def _read_leaf_node(reader: TlsReader) -> _LeafNode:
    reader.opaque()  # encryption_key
    signature_key = reader.opaque()
    credential_type = reader.u16()
    identity = reader.opaque()  # basic: the identity; x509: the certificate chain (a vector as well)
    for _ in range(5):  # Capabilities: versions, cipher_suites, extensions, proposals, credentials
        reader.opaque()
    source = reader.u8()
    if source == LEAF_SOURCE_KEY_PACKAGE:
        reader.take(16)  # Lifetime { not_before, not_after }
    elif source == LEAF_SOURCE_COMMIT:
        reader.opaque()  # parent_hash
    elif source != LEAF_SOURCE_UPDATE:
        raise MlsDecodeError(f"leaf node source {source}")
    reader.opaque()  # extensions
    reader.opaque()  # signature
    return _LeafNode(signature_key, credential_type, identity)


@dataclass(frozen=True)
class CommitInfo:
    """The public parts of a commit a member sent (its ``PublicMessage``)."""

    group_id: bytes
    epoch: int
    sender_leaf: int
    proposal_refs: tuple[bytes, ...]
    inline_proposals: int
    has_path: bool


def split_commit_welcome(data: bytes) -> tuple[CommitInfo, bytes, bytes | None]:
    """Opcode 28's body: ``MLSMessage commit`` then, when the commit adds members, a bare ``Welcome``.

    Returns the commit's public parts, the commit message and the welcome (``None`` when there is none).
    """
    reader = TlsReader(data)
    info = _read_commit_message(reader)
    commit = data[: reader.offset]
    if reader.done:
        return info, commit, None
    welcome = reader.rest()
    _check_welcome(welcome)
    return info, commit, welcome


def _read_commit_message(reader: TlsReader) -> CommitInfo:
    version, wire_format = reader.u16(), reader.u16()
    if (version, wire_format) != (MLS_VERSION_10, WIRE_PUBLIC_MESSAGE):
        raise MlsDecodeError(f"a DAVE commit is an MLS 1.0 PublicMessage, not version {version} format {wire_format}")
    group_id = reader.opaque()
    epoch = reader.u64()
    sender_type = reader.u8()
    if sender_type != SENDER_MEMBER:
        raise MlsDecodeError(f"commit from sender type {sender_type}, not a member")
    sender_leaf = reader.u32()
    reader.opaque()  # authenticated_data
    if (content_type := reader.u8()) != CONTENT_COMMIT:
        raise MlsDecodeError(f"content type {content_type}, not a commit")
    refs, inline = _read_proposals(TlsReader(reader.opaque()))
    has_path = reader.optional_present()
    if has_path:
        _read_leaf_node(reader)
        reader.opaque()  # UpdatePathNode nodes<V>
    reader.opaque()  # FramedContentAuthData.signature
    reader.opaque()  # confirmation_tag
    reader.opaque()  # membership_tag (a member sender)
    return CommitInfo(group_id, epoch, sender_leaf, tuple(refs), inline, has_path)


def _read_proposals(reader: TlsReader) -> tuple[list[bytes], int]:
    refs: list[bytes] = []
    inline = 0
    while not reader.done:
        kind = reader.u8()
        if kind == PROPOSAL_OR_REF_REFERENCE:
            refs.append(reader.opaque())
            continue
        if kind != PROPOSAL_OR_REF_PROPOSAL:
            raise MlsDecodeError(f"ProposalOrRef type {kind}")
        inline += 1
        proposal_type = reader.u16()
        if proposal_type == PROPOSAL_REMOVE:
            reader.u32()
        elif proposal_type == PROPOSAL_UPDATE:
            _read_leaf_node(reader)
        else:  # DAVE allows no other inline proposal; an Add would be the gateway's to send
            raise MlsDecodeError(f"inline proposal of type {proposal_type} in a DAVE commit")
    return refs, inline


def _check_welcome(welcome: bytes) -> None:
    _read_welcome(welcome)


def _read_welcome(welcome: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """``Welcome { CipherSuite cipher_suite; EncryptedGroupSecrets secrets<V>; opaque encrypted_group_info<V>; }``
    as (cipher suite, each new member's ``KeyPackageRef`` -> its encoded ``EncryptedGroupSecrets``, group info)."""
    reader = TlsReader(welcome)
    if (suite := reader.u16()) != CIPHERSUITE_P256:
        raise MlsDecodeError(f"welcome for cipher suite {suite}")
    secrets = TlsReader(reader.opaque())
    by_member: dict[bytes, bytes] = {}
    while not secrets.done:
        start = secrets.offset
        new_member = secrets.opaque()
        secrets.opaque()  # HPKECiphertext.kem_output
        secrets.opaque()  # HPKECiphertext.ciphertext
        by_member[new_member] = secrets.data[start : secrets.offset]
    group_info = reader.opaque()
    if not reader.done:
        raise MlsDecodeError("bytes after the welcome")
    return suite, by_member, group_info


def key_package_ref(key_package: bytes) -> bytes:
    """``KeyPackageRef`` (RFC 9420 §5.2): ``RefHash("MLS 1.0 KeyPackage Reference", KeyPackage)``."""
    return ref_hash(b"MLS 1.0 KeyPackage Reference", unframe_key_package(key_package))


def welcome_for(welcome: bytes, key_package: bytes) -> bytes:
    """The part of a welcome one new member needs: the group info and only the group secrets encrypted for its key
    package (what Discord's gateway sends each welcomed member with opcode 30)."""
    suite, by_member, group_info = _read_welcome(welcome)
    secrets = by_member.get(key_package_ref(key_package))
    if secrets is None:
        raise MlsDecodeError("the welcome holds no secrets for this key package")
    return struct.pack(">H", suite) + opaque(secrets) + opaque(group_info)
