"""The voice server's side of a DAVE group, sans I/O: who is in the MLS group, what to propose, which commit wins.

:class:`DaveDeliveryService` follows the DAVE protocol's "Group Key Exchange" section with the voice gateway as the
MLS delivery service and external sender. Every method takes one event from a member (connected, key package,
commit+welcome, ready for a transition, invalid commit, disconnected) and returns the messages to send, as
:class:`Outgoing` values; the caller (the loopback gateway) carries them over WebSocket or to in-process members.

- A member gets the external-sender package (opcode 25) when it connects and whenever it sends a key package while
  no group is established (it may have reset its session).
- No group yet: once two or more members have key packages, each gets Add proposals for all the others (27); the
  first commit (28) to arrive wins and establishes the group: its sender sits at leaf 0, the members it adds
  after it.
- An established group: members who join are added, members who leave are removed, both by proposals to every
  member of the group; the first valid commit for the current epoch wins.
- The winning commit goes to the members of the previous epoch (29), its welcome to the members it adds (30: each
  gets the group info and only the secrets encrypted for its own key package), with a
  fresh transition id; once every member of the new epoch is ready (23) -- or the caller reports a timeout -- the
  transition is executed (22). Changes that arrive meanwhile wait for the next round.
- A member left alone is reset: prepare epoch 1 (24), then transition 0 (21); the group is unestablished again.
- Proposals are revoked (27, revoke) for a joiner who leaves before the commit, and all of a round's when the caller
  reports that no valid commit came in time (then they are proposed again, freshly signed).

A commit is valid only when it is a public commit for the current epoch from a member of the round, referencing
exactly the proposals that member was sent, and nothing inline. The server's view of leaf indices follows RFC 9420
(removes blank their leaf, a trailing blank leaf is truncated, adds take the leftmost blank leaf or extend the tree).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.voice.mls_external import (
    ExternalSender,
    MlsDecodeError,
    group_id_for_channel,
    opaque,
    proposal_ref,
    proposals_vector,
    read_key_package,
    split_commit_welcome,
    welcome_for,
)

_log = logging.getLogger(__name__)

OP_PREPARE_TRANSITION = 21
OP_EXECUTE_TRANSITION = 22
OP_TRANSITION_READY = 23
OP_PREPARE_EPOCH = 24
OP_EXTERNAL_SENDER = 25
OP_KEY_PACKAGE = 26
OP_PROPOSALS = 27
OP_COMMIT_WELCOME = 28
OP_ANNOUNCE_COMMIT = 29
OP_WELCOME = 30
OP_INVALID_COMMIT_WELCOME = 31

PROPOSALS_APPEND = 0
PROPOSALS_REVOKE = 1


@dataclass(frozen=True)
class Outgoing:
    """One message for one member: a JSON ``data`` dict, or the binary body that follows the opcode byte."""

    user_id: int
    op: int
    data: dict[str, Any] | bytes

    @property
    def binary(self) -> bool:
        return isinstance(self.data, bytes)


@dataclass
class Round:
    """Proposals sent for one epoch, per recipient, until a commit wins."""

    round_id: int
    epoch: int
    sent: dict[int, dict[bytes, tuple[str, int]]]  # recipient -> proposal ref -> ("add" | "remove", user id)
    key_packages: dict[int, bytes]  # the key package each proposed Add carries, by user


@dataclass
class Transition:
    """A commit announced and waiting for its members to be ready."""

    transition_id: int
    epoch: int
    members: frozenset[int]
    waiting: set[int] = field(default_factory=set)


class DaveDeliveryService:
    """The MLS group of one call, as the voice gateway keeps it.

    Args:
        channel_id: the call's channel (its MLS group id).
        sender: the external sender; a new key by default.
        protocol_version: the DAVE protocol version of the call.
    """

    def __init__(self, channel_id: int, sender: ExternalSender | None = None, protocol_version: int = 1) -> None:
        self.group_id = group_id_for_channel(channel_id)
        self.sender = sender if sender is not None else ExternalSender()
        self.protocol_version = protocol_version
        #: The established group's epoch (0: no group yet) and tree: leaf index -> user id (``None``: blank).
        self.epoch = 0
        self.leaves: list[int | None] = []
        self.connected: set[int] = set()
        self.key_packages: dict[int, bytes] = {}
        self.transition: Transition | None = None
        #: The proposals awaiting a commit. Outcomes below, for tests and diagnostics.
        self.commits_accepted: list[tuple[int, int]] = []  # (committer, epoch)
        self.commits_ignored: list[tuple[int, str]] = []  # (committer, reason)
        self.key_packages_refused: list[tuple[int, str]] = []
        self.executed: list[int] = []
        self.executed_without: dict[int, list[int]] = {}  # transition id -> members not ready at its timeout
        self.resets: list[int] = []
        self.round: Round | None = None
        self.revoked: list[tuple[int, str]] = []  # (user whose proposal was revoked, why)
        self._flagged: set[int] = set()
        self._next_transition_id = 1
        self._next_round_id = 1

    @property
    def members(self) -> list[int]:
        """User ids in the established group, by leaf index."""
        return [user for user in self.leaves if user is not None]

    def leaf_of(self, user_id: int) -> int | None:
        return self.leaves.index(user_id) if user_id in self.leaves else None

    @property
    def busy(self) -> bool:
        """A round of proposals awaits its commit, or a transition awaits execution."""
        return self.round is not None or self.transition is not None

    # -- events from members ------------------------------------------------------------------------------------------

    def handle(self, message: Outgoing) -> list[Outgoing]:
        """A member's DAVE message (``message.user_id`` is the sender): key package, commit and welcome, ready, or
        invalid commit. Anything else is not the group's business and is ignored."""
        user, data = message.user_id, message.data
        if isinstance(data, bytes):
            if message.op == OP_KEY_PACKAGE:
                return self.key_package(user, data)
            if message.op == OP_COMMIT_WELCOME:
                return self.commit_welcome(user, data)
        elif message.op == OP_TRANSITION_READY:
            return self.transition_ready(user, int(data["transition_id"]))
        elif message.op == OP_INVALID_COMMIT_WELCOME:
            return self.invalid_commit_welcome(user, int(data["transition_id"]))
        return []

    def connect(self, user_id: int) -> list[Outgoing]:
        """A member's session is described (after opcode 4): it needs the external sender before anything else."""
        self.connected.add(user_id)
        return [self._external_sender(user_id)]

    def key_package(self, user_id: int, data: bytes) -> list[Outgoing]:
        """Opcode 26. The key package must name its sender (the credential holds the authenticated user id)."""
        if user_id not in self.connected:
            return []
        try:
            info = read_key_package(data)
        except MlsDecodeError as exc:
            self.key_packages_refused.append((user_id, str(exc)))
            return []
        if info.user_id != user_id:
            self.key_packages_refused.append((user_id, f"credential names user {info.user_id}"))
            return []
        self.key_packages[user_id] = data
        out: list[Outgoing] = []
        if self.epoch == 0:
            out.append(self._external_sender(user_id))  # it may have reset its session since it connected
        elif user_id in self.leaves:
            self._flagged.add(user_id)  # a fresh key package from a member: remove it, then add it again
        return out + self._advance()

    def commit_welcome(self, user_id: int, data: bytes) -> list[Outgoing]:
        """Opcode 28: the first valid commit of the round wins; any other is ignored."""
        round_ = self.round
        if round_ is None or user_id not in round_.sent:
            self.commits_ignored.append((user_id, "no proposals pending for this member"))
            return []
        try:
            info, commit, welcome = split_commit_welcome(data)
        except MlsDecodeError as exc:
            self.commits_ignored.append((user_id, f"malformed: {exc}"))
            return []
        expected = round_.sent[user_id]
        problem = None
        if info.group_id != self.group_id or info.epoch != round_.epoch:
            problem = f"for epoch {info.epoch}, not {round_.epoch}"
        elif self.epoch > 0 and info.sender_leaf != self.leaf_of(user_id):
            problem = f"sender leaf {info.sender_leaf} is not the member's"
        elif info.inline_proposals or set(info.proposal_refs) != set(expected):
            problem = "does not reference exactly the proposals sent"
        adds = [expected[ref][1] for ref in info.proposal_refs if ref in expected and expected[ref][0] == "add"]
        welcomes: dict[int, bytes] = {}
        if problem is None and adds:
            try:
                if welcome is None:
                    raise MlsDecodeError("no welcome")
                for user in adds:  # each new member gets the group info and only its own group secrets
                    welcomes[user] = welcome_for(welcome, round_.key_packages[user])
            except MlsDecodeError as exc:
                problem = f"adds members without a welcome for each: {exc}"
        if problem is not None:
            self.commits_ignored.append((user_id, problem))
            return []
        return self._accept(user_id, round_, info.proposal_refs, commit, welcomes)

    def transition_ready(self, user_id: int, transition_id: int) -> list[Outgoing]:
        """Opcode 23."""
        transition = self.transition
        if transition is None or transition.transition_id != transition_id:
            return []
        transition.waiting.discard(user_id)
        return self._execute() if not transition.waiting else []

    def transition_timeout(self, transition_id: int) -> list[Outgoing]:
        """The caller's timer: members that are not ready in time do not hold the others back."""
        if self.transition is None or self.transition.transition_id != transition_id:
            return []
        self.executed_without[transition_id] = sorted(self.transition.waiting)
        _log.info("DAVE transition %d executed without %s", transition_id, self.executed_without[transition_id])
        return self._execute()

    def invalid_commit_welcome(self, user_id: int, transition_id: int) -> list[Outgoing]:
        """Opcode 31: the member could not process a commit or welcome; it resets and sends a new key package."""
        self.key_packages.pop(user_id, None)
        if user_id in self.leaves:
            self._flagged.add(user_id)
        out = self.transition_ready(user_id, transition_id)
        return out + self._advance()

    def disconnect(self, user_id: int) -> list[Outgoing]:
        """The member left the call (or its voice WebSocket closed)."""
        self.connected.discard(user_id)
        self.key_packages.pop(user_id, None)
        out: list[Outgoing] = []
        if self.transition is not None and user_id in self.transition.waiting:
            out += self.transition_ready(user_id, self.transition.transition_id)
        if self.round is not None:
            self.round.sent.pop(user_id, None)
            out += self._revoke(lambda kind, user: kind == "add" and user == user_id, "left before the commit")
        return out + self._advance()

    def round_timeout(self, round_id: int) -> list[Outgoing]:
        """The caller's timer: no valid commit came in time. Revoke the round's proposals and propose again."""
        if self.round is None or self.round.round_id != round_id:
            return []
        _log.info("DAVE proposals of round %d had no valid commit in time; proposing again", round_id)
        return self._revoke(lambda _kind, _user: True, "no commit in time") + self._advance()

    def _revoke(self, which: Callable[[str, int], bool], why: str) -> list[Outgoing]:
        """Revoke the round's proposals that ``which(kind, user)`` selects (opcode 27, revoke); a recipient left
        with nothing to commit is out of the round, and a round left with no recipient is over."""
        round_ = self.round
        assert round_ is not None
        out = []
        for recipient, sent in list(round_.sent.items()):
            refs = [ref for ref, (kind, user) in sent.items() if which(kind, user)]
            if not refs:
                continue
            for ref in refs:
                self.revoked.append((sent.pop(ref)[1], why))
            body = bytes([PROPOSALS_REVOKE]) + opaque(b"".join(opaque(ref) for ref in refs))
            out.append(Outgoing(recipient, OP_PROPOSALS, body))
            if not sent:
                del round_.sent[recipient]
        if not round_.sent:
            self.round = None
        return out

    # -- the group ----------------------------------------------------------------------------------------------------

    def _advance(self) -> list[Outgoing]:
        """Start the next round if the group needs one and none is under way."""
        if self.busy:
            return []
        if self.epoch == 0:
            return self._propose_initial_group()
        leaving = [user for user in self.members if user not in self.connected or user in self._flagged]
        staying = [user for user in self.members if user not in leaving]
        joining = [
            user
            for user in self.key_packages
            if user in self.connected and (user not in self.members or user in self._flagged)
        ]
        if not leaving and not joining:
            return []
        if not staying:  # nobody is left to commit: start over
            return self._reset(None) + self._advance()
        if len(staying) == 1 and not joining:
            return self._reset(staying[0])
        messages: dict[bytes, tuple[str, int]] = {}
        batch: list[bytes] = []
        for user in leaving:
            leaf = self.leaf_of(user)
            assert leaf is not None
            message = self.sender.propose_remove(self.group_id, self.epoch, leaf)
            messages[proposal_ref(message)] = ("remove", user)
            batch.append(message)
        for user in joining:
            message = self.sender.propose_add(self.group_id, self.epoch, self.key_packages[user])
            messages[proposal_ref(message)] = ("add", user)
            batch.append(message)
        self._flagged.clear()
        proposed = {user: self.key_packages[user] for user in joining}
        self.round = self._new_round(self.epoch, {user: dict(messages) for user in staying}, proposed)
        body = bytes([PROPOSALS_APPEND]) + proposals_vector(batch)
        return [Outgoing(user, OP_PROPOSALS, body) for user in staying]

    def _propose_initial_group(self) -> list[Outgoing]:
        """No group: every member with a key package is proposed to every other one."""
        pending = [user for user in self.key_packages if user in self.connected]
        if len(pending) < 2:
            return []
        sent: dict[int, dict[bytes, tuple[str, int]]] = {}
        out = []
        for recipient in pending:
            batch = [self.sender.propose_add(self.group_id, 0, self.key_packages[u]) for u in pending if u != recipient]
            others = [u for u in pending if u != recipient]
            sent[recipient] = {proposal_ref(m): ("add", u) for m, u in zip(batch, others, strict=True)}
            out.append(Outgoing(recipient, OP_PROPOSALS, bytes([PROPOSALS_APPEND]) + proposals_vector(batch)))
        self.round = self._new_round(0, sent, {user: self.key_packages[user] for user in pending})
        return out

    def _new_round(
        self, epoch: int, sent: dict[int, dict[bytes, tuple[str, int]]], key_packages: dict[int, bytes]
    ) -> Round:
        round_id = self._next_round_id
        self._next_round_id += 1
        return Round(round_id, epoch, sent, key_packages)

    def _accept(
        self, committer: int, round_: Round, refs: tuple[bytes, ...], commit: bytes, welcomes: dict[int, bytes]
    ) -> list[Outgoing]:
        sent = round_.sent[committer]
        previous = [committer] if self.epoch == 0 else [u for u in self.members if u in self.connected]
        if self.epoch == 0:
            self.leaves = [committer]
        added: list[int] = []
        removed = {sent[ref][1] for ref in refs if sent[ref][0] == "remove"}
        for user in removed:  # RFC 9420 §12.3: removes first, then adds in the commit's order
            self.leaves[self.leaves.index(user)] = None
        while self.leaves and self.leaves[-1] is None:
            self.leaves.pop()
        for ref in refs:
            kind, user = sent[ref]
            if kind == "add":
                if None in self.leaves:
                    self.leaves[self.leaves.index(None)] = user
                else:
                    self.leaves.append(user)
                added.append(user)
                if self.key_packages.get(user) == round_.key_packages[user]:
                    del self.key_packages[user]  # used; a newer one (sent meanwhile) would stay
        self.commits_accepted.append((committer, round_.epoch))
        self.epoch = round_.epoch + 1
        self.round = None
        transition_id = self._next_transition_id
        self._next_transition_id = transition_id % 0xFFFF + 1
        members = frozenset(u for u in self.members if u in self.connected)
        self.transition = Transition(transition_id, self.epoch, members, set(members))
        header = struct.pack(">H", transition_id)
        # The commit goes to whoever was in the group and stays; a member removed and added again in this commit
        # has reset its session and joins by the welcome.
        out = [
            Outgoing(user, OP_ANNOUNCE_COMMIT, header + commit)
            for user in previous
            if user in members and user not in removed
        ]
        out += [Outgoing(user, OP_WELCOME, header + welcomes[user]) for user in added if user in members]
        return out

    def _execute(self) -> list[Outgoing]:
        transition = self.transition
        assert transition is not None
        self.transition = None
        self.executed.append(transition.transition_id)
        out = [
            Outgoing(user, OP_EXECUTE_TRANSITION, {"transition_id": transition.transition_id})
            for user in sorted(transition.members)
            if user in self.connected
        ]
        return out + self._advance()

    def _reset(self, sole_member: int | None) -> list[Outgoing]:
        """Back to no group; a sole remaining member re-creates its local group (opcodes 24 then 21)."""
        self.epoch = 0
        self.leaves = []
        self._flagged.clear()
        if sole_member is None:
            return []
        self.resets.append(sole_member)
        self.key_packages.pop(sole_member, None)  # it sends a new one
        version = self.protocol_version
        return [
            Outgoing(sole_member, OP_PREPARE_EPOCH, {"protocol_version": version, "epoch": 1}),
            Outgoing(sole_member, OP_PREPARE_TRANSITION, {"protocol_version": version, "transition_id": 0}),
        ]

    def _external_sender(self, user_id: int) -> Outgoing:
        return Outgoing(user_id, OP_EXTERNAL_SENDER, self.sender.package())
