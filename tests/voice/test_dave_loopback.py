"""The bot's real discord.py voice session in a real DAVE group, on loopback.

The loopback gateway is the MLS external sender and delivery service; the other people in the call are real
``davey`` sessions (:class:`~tests.voice.dave_member.SimulatedMember`). The bot's ``davey`` session is the one
discord.py creates and drives from the gateway's opcodes 21-31, nothing stubbed: proposals it accepts only because
they carry the gateway's signature, commits and welcomes other members produced, and media keys derived from the
group. What members send is E2EE-encrypted by their sessions and decrypted by the bot's receive path; what the bot
sends is decrypted by the members' sessions.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import davey
import discord.opus
import numpy as np
import pytest

from bot.audio.formats import REALTIME, REALTIME_FRAME_BYTES
from bot.voice.client import ReceivingVoiceClient
from bot.voice.opus_encoder import NATIVE_24K_MONO
from bot.voice.playback import OpusPlaybackSource, PlaybackSource
from bot.voice.sender import VoiceSender
from tests.voice.dave_group import OP_INVALID_COMMIT_WELCOME, OP_WELCOME, Outgoing
from tests.voice.dave_member import E2eeSpeaker, SimulatedMember
from tests.voice.fake_gateway import FakeVoiceServer, LoopbackClient, wait_until
from tests.voice.guild import lounge
from tests.voice.packets import (
    OPUS_SILENCE,
    aligned_snr_db,
    mono,
    reference_24k,
    samples_24k,
    speech_48k_stereo,
    tone_48k_stereo,
)

ALICE, CAROL, DAVE = 5, 7, 8
FRAME_BYTES = REALTIME_FRAME_BYTES  # what the bot decodes each member's 20 ms frame to: 24 kHz mono


class Heard:
    """What the bot decoded, per user."""

    def __init__(self, vc: ReceivingVoiceClient) -> None:
        self.per_user: dict[int, list[bytes]] = defaultdict(list)
        self.room: list[bytes] = []
        vc.set_user_audio_handler(lambda user, pcm, _level: self.per_user[user].append(pcm))
        vc.set_room_audio_handler(self.room.append)

    def pcm(self, user_id: int) -> bytes:
        return b"".join(self.per_user[user_id])


@dataclass
class DaveCall:
    server: FakeVoiceServer
    vc: ReceivingVoiceClient

    @property
    def bot_id(self) -> int:
        assert self.server.bot_user_id is not None
        return self.server.bot_user_id

    def in_step(self) -> bool:
        """The group is settled and the bot's session agrees with the gateway on epoch, leaf and members."""
        dave, session = self.server.dave, self.vc._connection.dave_session
        if dave is None or session is None or not self.server.dave_settled or dave.epoch == 0:
            return False
        return (
            session.ready
            and session.epoch == dave.epoch
            and session.own_leaf_index == dave.leaf_of(self.bot_id)
            and sorted(int(u) for u in session.get_user_ids()) == sorted(dave.members)
        )

    async def settle(self) -> None:
        await wait_until(self.in_step)
        dave = self.server.dave
        assert dave is not None
        for user, member in self.server.members.items():
            assert member.session.epoch == dave.epoch, user
            assert member.invalid_reported == []


async def connect(server: FakeVoiceServer, client: LoopbackClient) -> ReceivingVoiceClient:
    vc = await asyncio.wait_for(lounge(client).connect(cls=ReceivingVoiceClient, timeout=10), 15)
    assert isinstance(vc, ReceivingVoiceClient)
    return vc


@pytest.fixture
async def call() -> AsyncIterator[DaveCall]:
    """Alice and Carol are talking in an established DAVE group when the bot joins the call."""
    server = FakeVoiceServer(dave_protocol_version=1)
    await server.start()
    await server.add_member(ALICE, 1111)
    await server.add_member(CAROL, 2222)
    await wait_until(lambda: server.dave_settled and server.dave is not None and server.dave.epoch == 1)
    client = LoopbackClient(server)
    try:
        async with client:
            vc = await connect(server, client)
            try:
                dave_call = DaveCall(server, vc)
                await dave_call.settle()
                yield dave_call
            finally:
                await vc.disconnect(force=True)
    finally:
        await server.close()


async def talk(server: FakeVoiceServer, speaker: E2eeSpeaker, pcm16: bytes, *, silence_tail: int = 5) -> int:
    """Send ``pcm16`` as Discord would, one packet per 20 ms, encrypting each frame as it goes; returns the count."""
    frames = speaker.opus_frames(pcm16) + [OPUS_SILENCE] * silence_tail
    for opus in frames:
        server.send_voice(speaker.packet(opus)[1])
        await asyncio.sleep(0.02)
    return len(frames)


async def test_the_bot_joins_an_established_group_and_hears_each_member_attributed(call: DaveCall) -> None:
    server, vc = call.server, call.vc
    dave = server.dave
    assert dave is not None
    assert dave.epoch == 2 and dave.members == [ALICE, CAROL, call.bot_id]  # the bot was added at leaf 2
    assert dave.commits_accepted[-1][0] in (ALICE, CAROL)  # by one of them; the bot joined by the welcome
    heard = Heard(vc)
    alice, carol = server.members[ALICE].speaker(), server.members[CAROL].speaker(sequence=65_530)
    await server.speaking(ALICE, alice.ssrc)
    await server.speaking(CAROL, carol.ssrc)
    speech, tone = speech_48k_stereo(), tone_48k_stereo(660, 1.0)
    sent = await asyncio.gather(talk(server, alice, speech), talk(server, carol, tone))
    voiced = sent[0] - 5 + sent[1] - 5
    await wait_until(lambda: vc.metrics.get("dave_decrypted") == voiced and not vc.room.active)
    assert alice.e2ee_frames + carol.e2ee_frames == voiced  # every voiced frame was end-to-end encrypted
    for user, source in ((ALICE, speech), (CAROL, tone)):
        # decoded straight to 24 kHz mono, 20 ms a frame, and matching the source downsampled
        assert {len(frame) for frame in heard.per_user[user]} == {FRAME_BYTES}
        snr, corr, _ = aligned_snr_db(reference_24k(source), samples_24k(heard.pcm(user)))
        assert corr > 0.95 and snr > 10, (user, snr, corr)
    assert heard.room and {len(frame) for frame in heard.room} == {FRAME_BYTES}  # mixed at 24 kHz mono too
    metrics = vc.metrics.snapshot()
    assert metrics["decoded"] == voiced
    assert metrics.get("dave_failed", 0) == 0 and metrics.get("dave_unencrypted", 0) == 0
    assert vc.speakers_between(0, float("inf")) == {ALICE, CAROL}


async def test_a_frame_is_opaque_without_the_group_keys(call: DaveCall) -> None:
    """Transport decryption alone leaves a DAVE frame: the bot needs its group session to get Opus back."""
    member = call.server.members[ALICE]
    opus = discord.opus.Encoder().encode(tone_48k_stereo(500, 0.02), 960)
    frame = member.session.encrypt_opus(opus)
    assert frame.endswith(b"\xfa\xfa") and opus not in frame
    session = call.vc._connection.dave_session
    assert session is not None
    assert session.decrypt(ALICE, davey.MediaType.audio, frame) == opus
    outsider = SimulatedMember(CAROL, call.server.channel_id, 0)
    with pytest.raises(ValueError):
        outsider.session.decrypt(ALICE, davey.MediaType.audio, frame)


async def test_members_decrypt_what_the_bot_says(call: DaveCall) -> None:
    server, vc = call.server, call.vc
    source = PlaybackSource(prebuffer_ms=60, lead_silence_ms=0)
    t = np.arange(24_000) / 24_000  # 1 s at 24 kHz
    answer = np.rint(9000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    vc.play_source(source)
    for start in range(0, len(answer), 4800):
        source.feed("item_a", answer[start : start + 4800])
    await wait_until(lambda: source.played_ms("item_a") >= 999 and not source.is_playing)
    vc.stop()
    reference = np.repeat(np.rint(9000 * np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000)), 2)
    await wait_until(lambda: all(e2ee_frames_heard(server.members[user]) >= 50 for user in (ALICE, CAROL)))
    for user in (ALICE, CAROL):
        member = server.members[user]
        assert member.undecryptable == 0
        assert all(f.e2ee or f.opus == OPUS_SILENCE for f in member.heard)  # nothing in the clear
        pcm = decode(member)
        snr, corr, _ = aligned_snr_db(mono(reference.astype("<i2").tobytes()), mono(pcm))
        assert corr > 0.95 and snr > 10, (user, snr, corr)


async def test_members_decrypt_and_decode_the_bots_answer_encoded_at_24k_mono(call: DaveCall) -> None:
    """The bot's own send path (the shared sender, the Opus source encoding the answer as it comes, 24 kHz mono):
    each member decrypts every packet and decodes it as a Discord client does (48 kHz stereo); the stream says it is
    mono, and it is the answer."""
    server, vc = call.server, call.vc
    sender = VoiceSender()
    source = OpusPlaybackSource(prebuffer_ms=60, lead_silence_ms=0)
    assert source.encoder_settings == NATIVE_24K_MONO and source.pcm_format == REALTIME
    t = np.arange(24_000) / 24_000  # 1 s at 24 kHz
    answer = np.rint(9000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    vc.play_source(source, sender=sender)
    try:
        for start in range(0, len(answer), 4800):
            source.feed("item_a", answer[start : start + 4800])
        await wait_until(lambda: source.played_ms("item_a") >= 999 and not source.is_playing)
        await wait_until(lambda: all(e2ee_frames_heard(server.members[user]) >= 50 for user in (ALICE, CAROL)))
    finally:
        vc.stop()
        sender.close()
    reference = np.repeat(np.rint(9000 * np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000)), 2)
    for user in (ALICE, CAROL):
        member = server.members[user]
        assert member.undecryptable == 0
        voiced = [f.opus for f in member.heard if f.opus != OPUS_SILENCE]
        assert voiced and all(f.e2ee for f in member.heard if f.opus != OPUS_SILENCE)  # nothing in the clear
        assert all(opus[0] & 0x04 == 0 for opus in voiced)  # the TOC's stereo bit: a mono stream
        snr, corr, _ = aligned_snr_db(mono(reference.astype("<i2").tobytes()), mono(decode(member)))
        assert corr > 0.95 and snr > 10, (user, snr, corr)


def e2ee_frames_heard(member: SimulatedMember) -> int:
    return sum(frame.e2ee for frame in member.heard)


def decode(member: SimulatedMember) -> bytes:
    decoder = discord.opus.Decoder()  # type: ignore[no-untyped-call]
    frames = sorted(member.heard, key=lambda f: f.timestamp)
    return b"".join(decoder.decode(f.opus, fec=False) for f in frames if f.opus != OPUS_SILENCE)


async def test_a_member_joins_and_another_leaves_mid_sentence_without_a_frame_lost(call: DaveCall) -> None:
    """Two re-keys while Alice talks and the bot answers: Dave joins (epoch 3), Carol leaves (epoch 4). The bot
    decodes every frame of Alice's, whichever key it was made with."""
    server, vc = call.server, call.vc
    dave = server.dave
    assert dave is not None
    heard = Heard(vc)
    alice = server.members[ALICE].speaker()
    await server.speaking(ALICE, alice.ssrc)
    speech = speech_48k_stereo()

    async def membership_changes() -> None:
        await asyncio.sleep(0.5)
        await server.add_member(DAVE, 3333)
        await wait_until(lambda: dave.epoch == 3 and server.dave_settled)
        await asyncio.sleep(0.3)
        await server.remove_member(CAROL)
        await wait_until(lambda: dave.epoch == 4 and server.dave_settled)

    source = PlaybackSource(prebuffer_ms=60, lead_silence_ms=0)  # and the bot answers at the same time
    vc.play_source(source)
    source.feed("answer", np.rint(9000 * np.sin(2 * np.pi * 440 * np.arange(72_000) / 24_000)).astype("<i2").tobytes())
    sent, _ = await asyncio.gather(talk(server, alice, speech), membership_changes())
    vc.stop()
    await call.settle()
    assert set(alice.epochs) == {2, 3, 4}  # her frames were made with three different keys
    assert dave.members == [ALICE, call.bot_id, DAVE] and dave.leaves == [ALICE, None, call.bot_id, DAVE]
    voiced = sent - 5
    await wait_until(lambda: vc.metrics.get("decoded") == voiced and not vc.room.active)
    metrics = vc.metrics.snapshot()
    assert metrics.get("dave_decrypted") == voiced == alice.e2ee_frames
    assert metrics.get("dave_failed", 0) == 0 and metrics.get("lost", 0) == 0, sorted(metrics.items())
    snr, corr, _ = aligned_snr_db(reference_24k(speech), samples_24k(heard.pcm(ALICE)))
    assert corr > 0.95 and snr > 10, (snr, corr)
    assert len(dave.executed) == 4  # created, bot added, Dave added, Carol removed
    # The members heard the bot throughout. discord.py switches the bot's send key when it processes a commit, not
    # when the transition executes, so a member that processes the commit a moment later may miss a frame of the
    # bot's at each re-key (measured here: 0 or 1; Discord's clients lose about as many).
    for user, transitions in ((ALICE, 2), (DAVE, 1)):
        member = server.members[user]
        assert sum(f.e2ee for f in member.heard) > 100
        assert member.undecryptable <= 2 * transitions, (user, member.undecryptable)


async def test_the_bots_own_commit_can_win_and_a_sole_member_is_reset() -> None:
    """The bot alone has no group and speaks in the clear; with Alice on a slow link the bot's commit creates the
    group; when she leaves, the bot is reset to a group of its own again."""
    server = FakeVoiceServer(dave_protocol_version=1)
    await server.start()
    client = LoopbackClient(server)
    try:
        async with client:
            vc = await connect(server, client)
            dave = server.dave
            assert dave is not None
            await wait_until(lambda: call_bot(server) in dave.key_packages)
            session = vc._connection.dave_session
            assert session is not None and not session.ready
            alice = await server.add_member(ALICE, 1111, latency_s=0.3)
            dave_call = DaveCall(server, vc)
            await dave_call.settle()
            assert dave.commits_accepted == [(call_bot(server), 0)]  # the bot's commit, parsed from its opcode 28
            assert dave.members == [call_bot(server), ALICE]
            assert alice.session.ready and alice.session.own_leaf_index == 1
            await server.remove_member(ALICE)
            await wait_until(lambda: dave.resets == [call_bot(server)] and call_bot(server) in dave.key_packages)
            assert not session.ready and session.epoch == 0  # a fresh local group, waiting for company
            await vc.disconnect(force=True)
    finally:
        await server.close()


def call_bot(server: FakeVoiceServer) -> int:
    assert server.bot_user_id is not None
    return server.bot_user_id


async def test_after_a_voice_reconnect_the_bot_is_removed_then_welcomed_again(call: DaveCall) -> None:
    """The voice WebSocket drops: the gateway removes the bot from the group; discord.py reconnects with a fresh
    session and key package, is added back, and decrypts the members again."""
    server, vc = call.server, call.vc
    dave = server.dave
    assert dave is not None and server._ws is not None
    epoch_before = dave.epoch
    selects = len(server.ops_received(1))
    await server._ws.close(code=1001)
    await wait_until(lambda: len(server.ops_received(1)) > selects, 20)
    await wait_until(vc.is_connected, 20)
    await call.settle()
    assert dave.epoch == epoch_before + 2  # one commit removed the bot, the next added it back
    assert dave.members == [ALICE, CAROL, call.bot_id]
    heard = Heard(vc)
    alice = server.members[ALICE].speaker()
    await server.speaking(ALICE, alice.ssrc)
    decrypted_before = vc.metrics.get("dave_decrypted")
    sent = await talk(server, alice, tone_48k_stereo(500, 0.4))
    await wait_until(lambda: vc.metrics.get("dave_decrypted") == decrypted_before + sent - 5, 10)
    assert len(heard.pcm(ALICE)) == (sent - 5) * FRAME_BYTES


async def test_a_welcome_the_bot_cannot_process_is_reported_and_it_is_added_again() -> None:
    """The bot's first welcome arrives damaged: discord.py reports it (opcode 31) and starts over with a new key
    package; the gateway takes the bot out of the group and welcomes it again."""
    server = FakeVoiceServer(dave_protocol_version=1)
    await server.start()
    await server.add_member(ALICE, 1111)
    await server.add_member(CAROL, 2222)
    damaged: list[int] = []

    def damage_first_welcome(message: Outgoing) -> Outgoing:
        if message.op == OP_WELCOME and not damaged and isinstance(message.data, bytes):
            damaged.append(message.op)
            return Outgoing(message.user_id, message.op, message.data[:-8] + bytes(8))
        return message

    server.tamper = damage_first_welcome
    client = LoopbackClient(server)
    try:
        async with client:
            vc = await connect(server, client)
            call = DaveCall(server, vc)
            await wait_until(lambda: bool(server.ops_received(OP_INVALID_COMMIT_WELCOME)))
            await call.settle()
            dave = server.dave
            assert dave is not None and damaged
            assert dave.members == [ALICE, CAROL, call.bot_id]
            assert len(dave.executed) == 3  # created; bot added (it could not join); bot removed and added again
            heard = Heard(vc)
            carol = server.members[CAROL].speaker()
            await server.speaking(CAROL, carol.ssrc)
            sent = await talk(server, carol, tone_48k_stereo(500, 0.3))
            await wait_until(lambda: len(heard.pcm(CAROL)) == (sent - 5) * FRAME_BYTES)
            await vc.disconnect(force=True)
    finally:
        await server.close()


async def test_frames_before_the_speaking_event_are_kept_and_decrypted_once_the_user_is_known(call: DaveCall) -> None:
    """DAVE needs the sender's user id: the bot keeps a new SSRC's frames until SPEAKING names its user."""
    server, vc = call.server, call.vc
    heard = Heard(vc)
    alice = server.members[ALICE].speaker()
    frames = alice.opus_frames(tone_48k_stereo(700, 0.2))
    for opus in frames:
        server.send_voice(alice.packet(opus)[1])
        await asyncio.sleep(0.005)
    await wait_until(lambda: vc.metrics.get("unknown_ssrc") == len(frames))
    assert heard.pcm(ALICE) == b""
    await server.speaking(ALICE, alice.ssrc)

    async def silence_until_decrypted() -> None:  # the silence frames that end a talk spurt, 20 ms apart
        while vc.metrics.get("dave_decrypted") < len(frames):
            server.send_voice(alice.packet(OPUS_SILENCE)[1])
            await asyncio.sleep(0.02)

    await asyncio.wait_for(silence_until_decrypted(), 10)
    await wait_until(lambda: len(heard.pcm(ALICE)) == len(frames) * FRAME_BYTES)


async def test_a_frame_of_the_previous_epoch_arriving_after_the_re_key_is_still_heard(call: DaveCall) -> None:
    """Receivers keep the previous epoch's keys for a while: a packet made before a re-key and delivered after it
    (overtaken by the next one) is decrypted and played in its place."""
    server, vc = call.server, call.vc
    dave = server.dave
    assert dave is not None
    heard = Heard(vc)
    alice = server.members[ALICE].speaker()
    await server.speaking(ALICE, alice.ssrc)
    frames = alice.opus_frames(tone_48k_stereo(600, 0.4))
    for opus in frames[:9]:
        server.send_voice(alice.packet(opus)[1])
        await asyncio.sleep(0.02)
    _, delayed = alice.packet(frames[9])  # made in this epoch, held back in the network
    await server.add_member(DAVE, 3333)
    await call.settle()
    assert dave.epoch == 3 and server.members[ALICE].session.epoch == 3
    _, overtaking = alice.packet(frames[10])
    server.send_voice(overtaking)
    server.send_voice(delayed)
    for opus in frames[11:] + [OPUS_SILENCE] * 5:
        server.send_voice(alice.packet(opus)[1])
        await asyncio.sleep(0.02)
    assert alice.epochs[9:11] == [2, 3]
    await wait_until(lambda: vc.metrics.get("decoded") == len(frames) and not vc.room.active)
    metrics = vc.metrics.snapshot()
    assert metrics.get("dave_decrypted") == len(frames)
    assert metrics.get("lost", 0) == 0 and metrics.get("dave_failed", 0) == 0, sorted(metrics.items())
    _snr, corr, _ = aligned_snr_db(reference_24k(tone_48k_stereo(600, 0.4)), samples_24k(heard.pcm(ALICE)))
    assert corr > 0.95


async def test_reordered_and_duplicated_e2ee_packets_play_once_in_order(call: DaveCall) -> None:
    """DAVE's nonces tolerate reordering within the jitter buffer's reach; the network's duplicates play once."""
    server, vc = call.server, call.vc
    heard = Heard(vc)
    alice = server.members[ALICE].speaker()
    await server.speaking(ALICE, alice.ssrc)
    speech = speech_48k_stereo()
    packets = [alice.packet(opus)[1] for opus in alice.opus_frames(speech)]
    wire: list[bytes] = []
    for index, datagram in enumerate(packets):
        wire.append(datagram)
        if index % 11 == 0:
            wire.append(datagram)  # duplicated by the network
    for index in range(3, len(wire) - 1, 7):
        wire[index], wire[index + 1] = wire[index + 1], wire[index]  # reordered
    for datagram in wire + [alice.packet(OPUS_SILENCE)[1] for _ in range(5)]:
        server.send_voice(datagram)
        await asyncio.sleep(0.005)
    await wait_until(lambda: vc.metrics.get("decoded") == len(packets) and not vc.room.active)
    metrics = vc.metrics.snapshot()
    # Each frame is decrypted once: a copy is refused by davey's replay check (counted as ``dave_failed``) unless
    # the receive path drops it before DAVE; either way it never plays twice.
    assert metrics.get("dave_decrypted") == len(packets)
    assert metrics.get("lost", 0) == 0, sorted(metrics.items())
    snr, corr, _ = aligned_snr_db(reference_24k(speech), samples_24k(heard.pcm(ALICE)))
    assert corr > 0.95 and snr > 10, (snr, corr, sorted(metrics.items()))
