"""The external sender's MLS messages against real ``davey`` sessions: what davey accepts, what it refuses."""

from __future__ import annotations

import davey
import pytest

from tests.voice.mls_external import (
    CIPHERSUITE_P256,
    ExternalSender,
    MlsDecodeError,
    TlsReader,
    encode_varint,
    group_id_for_channel,
    proposal_ref,
    proposals_vector,
    read_key_package,
    split_commit_welcome,
    welcome_for,
)

CHANNEL = 10
GROUP = group_id_for_channel(CHANNEL)
APPEND = davey.ProposalsOperationType.append


def pending(user_id: int, sender: ExternalSender) -> tuple[davey.DaveSession, bytes]:
    """A member with its local (pending) group, as after opcodes 4 and 25, and its key package."""
    session = davey.DaveSession(1, user_id, CHANNEL)
    key_package = session.get_serialized_key_package()
    session.set_external_sender(sender.package())
    return session, key_package


@pytest.mark.parametrize(
    ("value", "encoded"), [(0, "00"), (63, "3f"), (64, "4040"), (16383, "7fff"), (16384, "80004000")]
)
def test_varint_lengths_follow_rfc_9420(value: int, encoded: str) -> None:
    assert encode_varint(value).hex() == encoded
    assert TlsReader(bytes.fromhex(encoded)).varint() == value


def test_varint_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError):
        encode_varint(1 << 30)
    with pytest.raises(MlsDecodeError):
        TlsReader(b"\xc0\x00\x00\x00\x00\x00\x00\x00").varint()


def test_key_package_names_its_member() -> None:
    session = davey.DaveSession(1, 1_090_123_456_789_012_345, CHANNEL)
    info = read_key_package(session.get_serialized_key_package())
    assert info.user_id == 1_090_123_456_789_012_345
    assert info.cipher_suite == CIPHERSUITE_P256
    assert len(info.signature_public_key) == 65  # an uncompressed P-256 point


def test_signed_add_is_accepted_and_the_commit_welcome_split_is_exact() -> None:
    sender = ExternalSender()
    alice, _ = pending(5, sender)
    carol, carol_kp = pending(7, sender)
    add = sender.propose_add(GROUP, 0, carol_kp)
    result = alice.process_proposals(APPEND, proposals_vector([add]))
    assert isinstance(result, davey.CommitWelcome) and result.welcome is not None
    info, commit, welcome = split_commit_welcome(result.commit + result.welcome)
    assert (commit, welcome) == (result.commit, result.welcome)
    assert info.group_id == GROUP and info.epoch == 0 and info.sender_leaf == 0
    assert info.proposal_refs == (proposal_ref(add),)  # the commit covers exactly our proposal, by reference
    assert info.inline_proposals == 0
    assert welcome is not None
    alice.process_commit(commit)
    carol.process_welcome(welcome)
    assert alice.ready and carol.ready and alice.epoch == carol.epoch == 1
    assert (alice.own_leaf_index, carol.own_leaf_index) == (0, 1)
    frame = alice.encrypt_opus(b"\xfc\x10\x20\x30")
    assert carol.decrypt(5, davey.MediaType.audio, frame) == b"\xfc\x10\x20\x30"


def test_a_proposal_signed_with_another_key_is_refused() -> None:
    sender, impostor = ExternalSender(), ExternalSender()
    alice, _ = pending(5, sender)
    _, carol_kp = pending(7, sender)
    with pytest.raises(ValueError, match="InvalidSignature"):
        alice.process_proposals(APPEND, proposals_vector([impostor.propose_add(GROUP, 0, carol_kp)]))
    assert alice.get_user_ids() == ["5"]


def test_a_proposal_for_another_group_or_epoch_is_refused() -> None:
    sender = ExternalSender()
    alice, _ = pending(5, sender)
    _, carol_kp = pending(7, sender)
    with pytest.raises(ValueError, match="WrongGroupId"):
        alice.process_proposals(APPEND, proposals_vector([sender.propose_add(group_id_for_channel(11), 0, carol_kp)]))
    with pytest.raises(ValueError):
        alice.process_proposals(APPEND, proposals_vector([sender.propose_add(GROUP, 3, carol_kp)]))


def test_remove_takes_a_member_out_and_its_commit_has_no_welcome() -> None:
    sender = ExternalSender()
    members = {user: pending(user, sender) for user in (1, 2, 3)}
    adds = [sender.propose_add(GROUP, 0, members[user][1]) for user in (2, 3)]
    first = members[1][0].process_proposals(APPEND, proposals_vector(adds))
    assert first is not None and first.welcome is not None
    members[1][0].process_commit(first.commit)
    for user in (2, 3):
        members[user][0].process_welcome(first.welcome)
    remove = proposals_vector([sender.propose_remove(GROUP, 1, 1)])  # user 2 sits at leaf 1
    commits = {user: members[user][0].process_proposals(APPEND, remove) for user in (1, 3)}
    winner = commits[3]
    assert winner is not None and winner.welcome is None
    info, commit, welcome = split_commit_welcome(winner.commit)
    assert welcome is None and info.epoch == 1 and info.sender_leaf == 2 and info.has_path
    for user in (1, 3):
        members[user][0].process_commit(commit)
    assert members[1][0].get_user_ids() == ["1", "3"] == members[3][0].get_user_ids()
    assert members[1][0].epoch == 2


def test_truncated_or_foreign_bytes_are_decode_errors() -> None:
    sender = ExternalSender()
    alice, _ = pending(5, sender)
    _, carol_kp = pending(7, sender)
    result = alice.process_proposals(APPEND, proposals_vector([sender.propose_add(GROUP, 0, carol_kp)]))
    assert result is not None and result.welcome is not None
    with pytest.raises(MlsDecodeError):
        split_commit_welcome(result.commit[:-5])
    with pytest.raises(MlsDecodeError):
        split_commit_welcome(result.commit + result.welcome[:-1])
    with pytest.raises(MlsDecodeError):
        split_commit_welcome(sender.propose_add(GROUP, 0, carol_kp))  # a proposal, not a commit
    with pytest.raises(MlsDecodeError):
        read_key_package(carol_kp + b"\x00")


def test_each_new_member_gets_only_its_own_secrets_from_the_welcome() -> None:
    sender = ExternalSender()
    alice, _ = pending(5, sender)
    (carol, carol_kp), (dave, dave_kp) = pending(7, sender), pending(8, sender)
    adds = [sender.propose_add(GROUP, 0, carol_kp), sender.propose_add(GROUP, 0, dave_kp)]
    result = alice.process_proposals(APPEND, proposals_vector(adds))
    assert result is not None and result.welcome is not None
    for_carol, for_dave = welcome_for(result.welcome, carol_kp), welcome_for(result.welcome, dave_kp)
    assert len(for_carol) < len(result.welcome) and for_carol != for_dave
    with pytest.raises(ValueError):
        carol.process_welcome(for_dave)  # nothing in it is encrypted for Carol
    alice.process_commit(result.commit)
    carol.process_welcome(for_carol)
    dave.process_welcome(for_dave)
    assert carol.get_user_ids() == ["5", "7", "8"] == dave.get_user_ids()
    with pytest.raises(MlsDecodeError):
        welcome_for(result.welcome, pending(9, sender)[1])  # a key package the commit did not add
