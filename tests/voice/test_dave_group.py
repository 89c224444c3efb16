"""The gateway's DAVE group logic with simulated members only (no network): group creation, joins, leaves, resets.

Messages go through a FIFO between the :class:`DaveDeliveryService` and real ``davey`` sessions, so every step is
checked by MLS itself: a wrong proposal, commit or welcome fails in davey and shows up as an invalid-commit report.
"""

from __future__ import annotations

import davey

from tests.voice.dave_group import Outgoing
from tests.voice.dave_member import InProcessCall, SimulatedMember
from tests.voice.mls_external import proposals_vector

CHANNEL = 10


def test_a_member_alone_has_no_group_and_two_establish_one() -> None:
    call = InProcessCall(CHANNEL)
    alice = call.join(5)
    assert call.service.epoch == 0 and not alice.session.ready
    assert [m.op for m in call.delivered] == [25, 25]  # on connect, and again with its key package
    carol = call.join(7)
    call.assert_consistent()
    assert call.service.epoch == 1 and set(call.service.members) == {5, 7}
    assert call.service.commits_accepted[0][1] == 0
    # Both committed; the first one won and the other was ignored as too late.
    assert len(call.service.commits_ignored) == 1
    frame = carol.session.encrypt_opus(b"\xfc\x01\x02\x03")
    assert alice.session.decrypt(7, davey.MediaType.audio, frame) == b"\xfc\x01\x02\x03"


def test_joins_and_leaves_keep_every_member_in_step() -> None:
    call = InProcessCall(CHANNEL)
    for user in (1, 2, 3, 4):
        call.join(user)
        if user > 1:
            call.assert_consistent()
    assert call.service.members == [1, 2, 3, 4]
    call.leave(2)
    call.assert_consistent()
    assert call.service.leaves == [1, None, 3, 4]
    call.join(9)  # takes the leftmost blank leaf
    call.assert_consistent()
    assert call.service.leaves == [1, 9, 3, 4]
    call.leave(4)  # the rightmost leaf: the tree is truncated
    call.assert_consistent()
    assert call.service.leaves == [1, 9, 3]
    assert call.service.executed == list(range(1, len(call.service.executed) + 1))


def test_the_last_member_left_is_reset_and_a_new_group_forms_with_the_next() -> None:
    call = InProcessCall(CHANNEL)
    alice = call.join(5)
    call.join(7)
    call.leave(7)
    assert call.service.resets == [5] and call.service.epoch == 0
    assert not alice.session.ready  # a fresh local group, pending
    call.join(8)
    call.assert_consistent()
    assert set(call.service.members) == {5, 8}


def test_only_a_commit_of_the_current_round_wins() -> None:
    call = InProcessCall(CHANNEL)
    call.join(1)
    call.join(2)
    service = call.service
    stale = call.commits[1]  # the commit that lost the race at group creation (epoch 0)
    newcomer = SimulatedMember(3, CHANNEL, ssrc=30)
    call.members[3] = newcomer
    call.queue.extend(service.connect(3))
    call.run()
    key_package = newcomer.session.get_serialized_key_package()
    proposals = service.key_package(3, key_package)  # the round at epoch 1 opens; held back for now
    assert sorted(m.user_id for m in proposals if m.op == 27) == [1, 2]
    assert isinstance(stale.data, bytes)
    assert service.commit_welcome(stale.user_id, stale.data) == []
    assert service.commits_ignored[-1] == (stale.user_id, "for epoch 0, not 1")
    # Member 1 commits to a properly signed Add that the server did not send in this round.
    stranger = SimulatedMember(4, CHANNEL, ssrc=40).session.get_serialized_key_package()
    unsent = proposals_vector([service.sender.propose_add(service.group_id, 1, stranger)])
    result = call.members[1].session.process_proposals(davey.ProposalsOperationType.append, unsent)
    assert result is not None
    assert service.commit_welcome(1, result.commit + (result.welcome or b"")) == []
    assert service.commits_ignored[-1] == (1, "does not reference exactly the proposals sent")
    call.queue.extend(proposals)
    call.run()
    call.assert_consistent()
    assert service.members == [1, 2, 3]
    # Member 1's commit also covered the unsent Add, so member 2's won.
    assert service.commits_accepted[-1] == (2, 1)
    assert service.commits_ignored[-1] == (1, "does not reference exactly the proposals sent")


def test_a_key_package_must_name_its_sender() -> None:
    call = InProcessCall(CHANNEL)
    call.join(5)
    impostor = SimulatedMember(6, CHANNEL, ssrc=60)
    assert call.service.key_package(5, impostor.session.get_serialized_key_package()) == []
    assert call.service.key_packages_refused == [(5, "credential names user 6")]


def test_a_joiner_who_leaves_before_the_commit_has_its_add_revoked() -> None:
    call = InProcessCall(CHANNEL)
    call.join(1)
    call.join(2)
    service = call.service
    newcomer = SimulatedMember(3, CHANNEL, ssrc=30)
    service.connect(3)
    proposals = service.key_package(3, newcomer.session.get_serialized_key_package())
    revokes = service.disconnect(3)  # gone before any member committed
    assert [(m.user_id, *proposals_op(m)) for m in revokes] == [(1, 27, 1), (2, 27, 1)]
    assert service.revoked == [(3, "left before the commit"), (3, "left before the commit")]
    assert not service.busy
    call.queue.extend(proposals + revokes)  # the members get the Add, then its revocation
    call.run()
    call.assert_consistent()
    assert service.members == [1, 2] and service.epoch == 1
    call.join(4)  # the members' caches hold nothing stale: the next change goes through
    call.assert_consistent()
    assert service.members == [1, 2, 4]


def test_a_round_without_a_valid_commit_is_revoked_and_proposed_again() -> None:
    call = InProcessCall(CHANNEL)
    call.join(1)
    call.join(2)
    service = call.service
    newcomer = SimulatedMember(3, CHANNEL, ssrc=30)
    call.members[3] = newcomer
    call.queue.extend(service.connect(3))
    call.run()
    proposals = service.key_package(3, newcomer.session.get_serialized_key_package())
    for message in proposals:  # the members commit, but their commits are lost on the way
        assert [reply.op for reply in call.members[message.user_id].receive(message)] == [28]
    assert service.round is not None
    retry = service.round_timeout(service.round.round_id)
    assert [proposals_op(m) for m in retry] == [(27, 1), (27, 1), (27, 0), (27, 0)]  # revoke, revoke, append, append
    call.queue.extend(retry)
    call.run()
    call.assert_consistent()
    assert service.members == [1, 2, 3] and newcomer.session.own_leaf_index == 2


def proposals_op(message: Outgoing) -> tuple[int, int]:
    """(opcode, operation type) of an opcode 27 message: 0 append, 1 revoke."""
    assert isinstance(message.data, bytes)
    return message.op, message.data[0]


def test_a_member_who_never_gets_ready_does_not_hold_the_transition_forever() -> None:
    call = InProcessCall(CHANNEL)
    call.join(1)
    frozen = call.join(2)
    del call.members[2]  # still connected, but nothing reaches it any more and it answers nothing
    call.join(3)
    service = call.service
    assert service.transition is not None and service.transition.waiting == {2}
    transition_id = service.transition.transition_id
    execute = service.transition_timeout(transition_id)
    assert [(m.user_id, m.op) for m in execute] == [(1, 22), (2, 22), (3, 22)]
    assert service.executed_without == {transition_id: [2]}
    call.queue.extend(execute)
    call.run()
    call.assert_consistent()  # the others moved on; the frozen member's ready comes too late to matter
    assert frozen.session.epoch == service.epoch - 1
