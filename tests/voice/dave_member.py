"""Simulated members of a DAVE call: a real ``davey`` session each, driven by the voice gateway as discord.py drives
its own, plus speaking (E2EE Opus frames) and hearing (decrypting what the bot sends).

A :class:`SimulatedMember` answers the gateway's DAVE messages (:class:`~tests.voice.dave_group.Outgoing`) with its
own, exactly as ``discord.gateway.DiscordVoiceWebSocket`` does: set the external sender (25), process proposals and
send the commit with its welcome (27 -> 28), process a commit or welcome and report ready (29/30 -> 23, or 31 and a
new key package when it cannot), execute transitions (21/22), re-create its group on prepare-epoch 1 (24 -> 26).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

import davey

from tests.voice.dave_group import (
    OP_ANNOUNCE_COMMIT,
    OP_COMMIT_WELCOME,
    OP_EXECUTE_TRANSITION,
    OP_EXTERNAL_SENDER,
    OP_INVALID_COMMIT_WELCOME,
    OP_KEY_PACKAGE,
    OP_PREPARE_EPOCH,
    OP_PREPARE_TRANSITION,
    OP_PROPOSALS,
    OP_TRANSITION_READY,
    OP_WELCOME,
    PROPOSALS_APPEND,
    DaveDeliveryService,
    Outgoing,
)
from tests.voice.packets import KEY, OPUS_SILENCE, Speaker

DAVE_MAGIC_MARKER = b"\xfa\xfa"


@dataclass(frozen=True)
class HeardFrame:
    """One frame of the bot's, as a member got it: RTP timestamp and the Opus payload after DAVE decryption."""

    timestamp: int
    opus: bytes
    e2ee: bool


class SimulatedMember:
    """One Discord user in the call, with a real ``davey`` session.

    Args:
        user_id: the member's user id (its MLS credential).
        channel_id: the call's channel (the MLS group id).
        ssrc: the SSRC it sends audio on.
    """

    def __init__(self, user_id: int, channel_id: int, ssrc: int, protocol_version: int = 1) -> None:
        self.user_id = user_id
        self.channel_id = channel_id
        self.ssrc = ssrc
        self.protocol_version = protocol_version
        self.session = davey.DaveSession(protocol_version, user_id, channel_id)
        self.pending_transitions: dict[int, int] = {}
        self.executed: list[int] = []
        self.invalid_reported: list[int] = []
        self.heard: list[HeardFrame] = []
        #: E2EE frames it could not decrypt while in the group, and those that came before it had a group.
        self.undecryptable = 0
        self.before_joining = 0
        #: How long its messages take to reach the server (set by the gateway that hosts it).
        self.latency_s = 0.0

    def start(self) -> list[Outgoing]:
        """Its session is described (opcode 4 with a DAVE version): it sends its key package."""
        return [self._key_package()]

    def receive(self, message: Outgoing) -> list[Outgoing]:
        """Handle one gateway message; returns the member's answers."""
        op, data = message.op, message.data
        if isinstance(data, bytes):
            return self._binary(op, data)
        if op == OP_PREPARE_TRANSITION:
            transition_id = int(data["transition_id"])
            self.pending_transitions[transition_id] = int(data["protocol_version"])
            if transition_id == 0:
                self._execute(0)
                return []
            return [self._ready(transition_id)]
        if op == OP_EXECUTE_TRANSITION:
            self._execute(int(data["transition_id"]))
        elif op == OP_PREPARE_EPOCH and int(data["epoch"]) == 1:
            self.protocol_version = int(data["protocol_version"])
            self.session.reinit(self.protocol_version, self.user_id, self.channel_id)
            return [self._key_package()]
        return []

    def _binary(self, op: int, data: bytes) -> list[Outgoing]:
        if op == OP_EXTERNAL_SENDER:
            self.session.set_external_sender(data)
        elif op == OP_PROPOSALS:
            kind = (
                davey.ProposalsOperationType.append
                if data[0] == PROPOSALS_APPEND
                else davey.ProposalsOperationType.revoke
            )
            result = self.session.process_proposals(kind, data[1:])
            if isinstance(result, davey.CommitWelcome):
                body = result.commit + (result.welcome or b"")
                return [Outgoing(self.user_id, OP_COMMIT_WELCOME, body)]
        elif op in (OP_ANNOUNCE_COMMIT, OP_WELCOME):
            (transition_id,) = struct.unpack_from(">H", data)
            try:
                if op == OP_ANNOUNCE_COMMIT:
                    self.session.process_commit(data[2:])
                else:
                    self.session.process_welcome(data[2:])
            except ValueError:
                return self._invalid(transition_id)
            if transition_id != 0:
                self.pending_transitions[transition_id] = self.protocol_version
                return [self._ready(transition_id)]
        return []

    def _execute(self, transition_id: int) -> None:
        if transition_id in self.pending_transitions:
            self.protocol_version = self.pending_transitions.pop(transition_id)
            self.executed.append(transition_id)

    def _invalid(self, transition_id: int) -> list[Outgoing]:
        self.invalid_reported.append(transition_id)
        self.session.reinit(self.protocol_version, self.user_id, self.channel_id)
        return [
            Outgoing(self.user_id, OP_INVALID_COMMIT_WELCOME, {"transition_id": transition_id}),
            self._key_package(),
        ]

    def _ready(self, transition_id: int) -> Outgoing:
        return Outgoing(self.user_id, OP_TRANSITION_READY, {"transition_id": transition_id})

    def _key_package(self) -> Outgoing:
        return Outgoing(self.user_id, OP_KEY_PACKAGE, self.session.get_serialized_key_package())

    # -- media --------------------------------------------------------------------------------------------------------

    def speaker(self, *, sequence: int = 1000) -> E2eeSpeaker:
        """A :class:`~tests.voice.packets.Speaker` on this member's SSRC that E2EE-encrypts with its session."""
        return E2eeSpeaker(self, sequence=sequence)

    def hear(self, sender_id: int, timestamp: int, frame: bytes) -> None:
        """A frame from ``sender_id`` (after transport decryption), as the SFU forwards it: decrypt it."""
        e2ee = frame.endswith(DAVE_MAGIC_MARKER)
        if frame == OPUS_SILENCE or not self.session.ready:
            if e2ee:
                self.before_joining += 1  # not in the group (yet): these frames are not for it
                return
            self.heard.append(HeardFrame(timestamp, frame, False))
            return
        try:
            opus = self.session.decrypt(sender_id, davey.MediaType.audio, frame)
        except ValueError:
            self.undecryptable += 1
            return
        self.heard.append(HeardFrame(timestamp, opus, e2ee))


class E2eeSpeaker(Speaker):
    """Sends as a Discord client does under DAVE: Opus, then the member's E2EE frame transform, then transport
    encryption. Encrypts at the moment each packet is made, so a group change between packets takes effect."""

    def __init__(self, member: SimulatedMember, *, sequence: int = 1000) -> None:
        super().__init__(member.ssrc, KEY, sequence=sequence)
        self.member = member
        self.e2ee_frames = 0
        #: The group epoch each voiced packet was made in (0: no group, sent in the clear).
        self.epochs: list[int] = []

    def packet(self, opus: bytes) -> tuple[int, bytes]:
        session = self.member.session
        if session.ready and opus != OPUS_SILENCE:
            opus = session.encrypt_opus(opus)
            self.e2ee_frames += 1
            self.epochs.append(session.epoch or 0)
        elif opus != OPUS_SILENCE:
            self.epochs.append(0)
        return super().packet(opus)


class InProcessCall:
    """A DAVE call without a network: the gateway's group and simulated members, every message delivered in order.

    For tests of the group logic, and to get members of a real group (``davey`` sessions with media keys) in one
    line of setup.
    """

    def __init__(self, channel_id: int) -> None:
        self.channel_id = channel_id
        self.service = DaveDeliveryService(channel_id)
        self.members: dict[int, SimulatedMember] = {}
        self.queue: deque[Outgoing] = deque()
        self.delivered: list[Outgoing] = []
        self.commits: list[Outgoing] = []

    def join(self, user_id: int) -> SimulatedMember:
        member = SimulatedMember(user_id, self.channel_id, ssrc=user_id * 10)
        self.members[user_id] = member
        self.queue.extend(self.service.connect(user_id))
        self.run()
        self.from_member(member.start())
        return member

    def leave(self, user_id: int) -> None:
        del self.members[user_id]
        self.queue.extend(self.service.disconnect(user_id))
        self.run()

    def from_member(self, replies: list[Outgoing]) -> None:
        for reply in replies:
            self.queue.extend(self._to_service(reply))
        self.run()

    def run(self) -> None:
        while self.queue:
            message = self.queue.popleft()
            self.delivered.append(message)
            member = self.members.get(message.user_id)
            if member is not None:
                for reply in member.receive(message):
                    self.queue.extend(self._to_service(reply))

    def _to_service(self, reply: Outgoing) -> list[Outgoing]:
        if reply.op == OP_COMMIT_WELCOME:
            self.commits.append(reply)
        return self.service.handle(reply)

    def assert_consistent(self) -> None:
        """Every member is in the group the server believes, at the leaf it believes, and no one complained."""
        service = self.service
        assert not service.busy
        for user, member in self.members.items():
            assert member.invalid_reported == []
            assert member.session.ready, user
            assert member.session.epoch == service.epoch
            assert member.session.own_leaf_index == service.leaf_of(user)
            assert sorted(int(u) for u in member.session.get_user_ids()) == sorted(service.members)
