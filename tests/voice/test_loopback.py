"""The real voice client against a loopback voice server: real WebSocket, real UDP, real libopus, real crypto."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import numpy as np
import pytest

from bot.audio.formats import REALTIME_FRAME_BYTES
from bot.voice.client import ReceivingVoiceClient
from bot.voice.playback import PlaybackSource
from tests.voice.fake_gateway import FakeVoiceServer, LoopbackClient, wait_until
from tests.voice.guild import lounge
from tests.voice.packets import (
    Speaker,
    aligned_snr_db,
    mono,
    reference_24k,
    samples_24k,
    speech_48k_stereo,
    tone_48k_stereo,
)

ALICE, CAROL = 5, 7


class Heard:
    def __init__(self, vc: ReceivingVoiceClient) -> None:
        self.per_user: dict[int, list[bytes]] = defaultdict(list)
        self.room: list[bytes] = []
        vc.set_user_audio_handler(lambda user, pcm, _level: self.per_user[user].append(pcm))
        vc.set_room_audio_handler(self.room.append)

    def pcm(self, user_id: int) -> bytes:
        return b"".join(self.per_user[user_id])


async def send_paced(server: FakeVoiceServer, datagrams: list[bytes], every_s: float = 0.005) -> None:
    for datagram in datagrams:
        server.send_voice(datagram)
        await asyncio.sleep(every_s)


async def test_handshake_reaches_connected_with_the_negotiated_mode(
    server: FakeVoiceServer, voice: ReceivingVoiceClient
) -> None:
    assert voice.is_connected()
    assert voice.mode == "aead_xchacha20_poly1305_rtpsize"
    assert bytes(voice.secret_key) == server.secret_key
    assert voice.ssrc == server.bot_ssrc
    identify = server.ops_received(0)[0]["d"]
    assert identify["session_id"] == "voice-session-1" and identify["token"] == "voice-token"
    assert server.ops_received(1)[0]["d"]["data"]["port"] == server.bot_udp_addr[1]  # type: ignore[index]
    assert server.ops_received(5)  # discord.py announces its SSRC with SPEAKING after the key
    # Heartbeats carry the last sequence number the bot saw.
    await wait_until(lambda: len(server.heartbeat_acks) >= 1)
    assert server.heartbeat_acks[-1]["seq_ack"] == server.last_seq


async def test_two_users_speech_arrives_as_the_right_per_user_pcm(
    server: FakeVoiceServer, voice: ReceivingVoiceClient
) -> None:
    heard = Heard(voice)
    speech, tone = speech_48k_stereo(), tone_48k_stereo(660, 1.0)
    alice, carol = Speaker(ssrc=1111), Speaker(ssrc=2222, sequence=65530)
    await server.speaking(ALICE, 1111)
    await server.speaking(CAROL, 2222)
    a_packets, c_packets = alice.packets(speech, silence_tail=5), carol.packets(tone, silence_tail=5)
    # Both talk at once, each at Discord's pace of one packet per 20 ms.
    await asyncio.gather(send_paced(server, a_packets, 0.02), send_paced(server, c_packets, 0.02))
    await wait_until(
        lambda: len(heard.pcm(ALICE)) >= (len(a_packets) - 5) * REALTIME_FRAME_BYTES and not voice.room.active
    )
    for user, source in ((ALICE, speech), (CAROL, tone)):
        snr, corr, _ = aligned_snr_db(reference_24k(source), samples_24k(heard.pcm(user)))
        assert corr > 0.95 and snr > 10, (user, snr, corr)
    # The room stream mixed both while they overlapped and attributes the frames to both.
    assert heard.room and all(len(f) == REALTIME_FRAME_BYTES for f in heard.room)
    # One frame per 20 ms while Alice (the longer speaker) talks, then the 300 ms silence tail.
    assert len(heard.room) >= (len(a_packets) - 5) + 15
    assert heard.room[-15:] == [bytes(REALTIME_FRAME_BYTES)] * 15
    assert voice.room.dropped_frames == 0
    assert voice.speakers_between(0, float("inf")) == {ALICE, CAROL}
    assert voice.metrics.get("decoded") == len(a_packets) + len(c_packets) - 10
    assert voice.call_user_ids >= {ALICE, CAROL}


async def test_loss_reorder_duplicates_and_garbage_are_survived(
    server: FakeVoiceServer, voice: ReceivingVoiceClient
) -> None:
    heard = Heard(voice)
    speech = speech_48k_stereo()
    speaker = Speaker(ssrc=3333)
    await server.speaking(ALICE, 3333)
    packets = speaker.packets(speech)
    rng = random.Random(9)
    wire: list[bytes] = []
    for index, datagram in enumerate(packets):
        if index in (30, 31, 90):
            continue  # lost
        wire.append(datagram)
        if index % 13 == 0:
            wire.append(datagram)  # duplicated
        if index % 19 == 0:
            wire.append(rng.randbytes(rng.randrange(1, 60)))  # garbage
    for index in range(4, len(wire) - 1, 9):
        wire[index], wire[index + 1] = wire[index + 1], wire[index]  # reordered
    await send_paced(server, wire)
    await wait_until(lambda: voice.metrics.get("decoded") == len(packets))  # every slot: real or concealed
    metrics = voice.metrics.snapshot()
    assert metrics["lost"] == 3 and metrics["duplicate"] >= 1, sorted(metrics.items())
    assert metrics.get("internal_error", 0) == 0
    snr, corr, _ = aligned_snr_db(reference_24k(speech), samples_24k(heard.pcm(ALICE)))
    assert corr > 0.9 and snr > 5, (snr, corr)


async def test_client_disconnect_forgets_the_user(server: FakeVoiceServer, voice: ReceivingVoiceClient) -> None:
    heard = Heard(voice)
    await server.send(11, {"user_ids": ["5", "7"]})  # CLIENTS_CONNECT
    await wait_until(lambda: voice.call_user_ids == {ALICE, CAROL})
    speaker = Speaker(ssrc=4444)
    await server.speaking(CAROL, 4444)
    await send_paced(server, speaker.packets(tone_48k_stereo(500, 0.2)))
    await wait_until(lambda: len(heard.per_user[CAROL]) == 10)
    await server.client_disconnect(CAROL)
    await wait_until(lambda: CAROL not in voice.call_user_ids)
    parked_before = voice.metrics.get("unknown_ssrc")
    await send_paced(server, speaker.packets(tone_48k_stereo(500, 0.1)))
    await wait_until(lambda: voice.metrics.get("unknown_ssrc") == parked_before + 5)
    assert len(heard.per_user[CAROL]) == 10


async def test_playback_reaches_the_server_as_the_audio_played(
    server: FakeVoiceServer, voice: ReceivingVoiceClient
) -> None:
    source = PlaybackSource(prebuffer_ms=60, lead_silence_ms=0)
    t = np.arange(24_000) / 24_000  # 1 s at 24 kHz
    answer = np.rint(9000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    voice.play_source(source)
    for start in range(0, len(answer), 4800):
        source.feed("item_a", answer[start : start + 4800])
    await wait_until(lambda: source.played_ms("item_a") >= 999 and not source.is_playing)
    await wait_until(lambda: len(server.voice_datagrams) >= 50)
    voice.stop()
    pcm, packets = server.decode_bot_audio()
    assert packets >= 50
    reference = np.repeat(np.rint(9000 * np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000)), 2)
    received = mono(pcm)
    voiced = received[np.abs(received) > 0]
    assert len(voiced) > 40_000
    snr, corr, _ = aligned_snr_db(mono(reference.astype("<i2").tobytes()), received)
    assert corr > 0.95 and snr > 10, (snr, corr)


async def test_barge_in_clear_stops_the_audio_sent(server: FakeVoiceServer, voice: ReceivingVoiceClient) -> None:
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=0)
    t = np.arange(24_000 * 5) / 24_000  # 5 s
    voice.play_source(source)
    source.feed("long", np.rint(9000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes())
    await wait_until(lambda: source.played_ms("long") >= 300)
    played = source.clear()
    assert 300 <= played["long"] < 5000
    await asyncio.sleep(0.2)
    assert source.played_ms("long") == played["long"]
    assert not source.is_playing
    voice.stop()


async def test_members_and_humans_come_from_the_channel(voice: ReceivingVoiceClient) -> None:
    assert voice.channel_id == 10
    assert voice.member_names() == {5: "alice", 7: "carol"}
    assert voice.humans_present() == 2


async def test_dave_call_before_the_group_is_ready_passes_plain_frames() -> None:
    """With ``dave_protocol_version`` 1 discord.py creates a real davey session and sends its MLS key package; until
    the group is established, frames arrive unencrypted and the receive path passes them through."""
    server = FakeVoiceServer(dave_protocol_version=1)
    await server.start()
    client = LoopbackClient(server)
    try:
        async with client:
            vc = await asyncio.wait_for(lounge(client).connect(cls=ReceivingVoiceClient, timeout=10), 15)
            assert isinstance(vc, ReceivingVoiceClient)
            heard = Heard(vc)
            await wait_until(lambda: any(b[0] == 26 for b in server.received_binary))  # MLS_KEY_PACKAGE
            session = vc._connection.dave_session
            assert session is not None and not session.ready
            await server.speaking(ALICE, 5555)
            tone = tone_48k_stereo(800, 0.4)
            await send_paced(server, Speaker(ssrc=5555).packets(tone))
            await wait_until(lambda: len(heard.pcm(ALICE)) == 20 * REALTIME_FRAME_BYTES)
            _snr, corr, _ = aligned_snr_db(reference_24k(tone), samples_24k(heard.pcm(ALICE)))
            assert corr > 0.95
            assert vc.metrics.get("dave_passthrough") == 20
            await vc.disconnect(force=True)
    finally:
        await server.close()


async def test_a_legacy_mode_is_reported_and_nothing_is_decrypted() -> None:
    server = FakeVoiceServer(modes=("xsalsa20_poly1305_lite",))
    await server.start()
    client = LoopbackClient(server)
    try:
        async with client:
            vc = await asyncio.wait_for(lounge(client).connect(cls=ReceivingVoiceClient, timeout=10), 15)
            assert isinstance(vc, ReceivingVoiceClient)
            assert vc.mode == "xsalsa20_poly1305_lite"
            assert vc.metrics.get("unsupported_mode") == 1
            await server.speaking(ALICE, 6666)
            await send_paced(server, Speaker(ssrc=6666).packets(tone_48k_stereo(800, 0.1)))
            await asyncio.sleep(0.1)
            assert vc.metrics.get("decoded") == 0
            await vc.disconnect(force=True)
    finally:
        await server.close()


async def test_the_audio_gate_keeps_a_user_out_of_the_room_stream(
    server: FakeVoiceServer, voice: ReceivingVoiceClient
) -> None:
    heard = Heard(voice)
    voice.set_audio_gate(lambda user_id: user_id == ALICE)  # e.g. push-to-talk held by alice only
    alice, carol = Speaker(ssrc=5551), Speaker(ssrc=5552)
    await server.speaking(ALICE, 5551)
    await server.speaking(CAROL, 5552)
    await send_paced(server, carol.packets(tone_48k_stereo(500, 0.4), silence_tail=5), 0.02)
    await wait_until(lambda: len(heard.per_user[CAROL]) >= 20)
    assert heard.room == []  # carol was decoded (levels still known) but nothing of her reached the room
    await send_paced(server, alice.packets(tone_48k_stereo(700, 0.4), silence_tail=5), 0.02)
    await wait_until(lambda: len(heard.room) >= 20 and not voice.room.active)
    assert voice.speakers_between(0, float("inf")) == {ALICE}


async def test_receive_survives_a_voice_gateway_reconnect(server: FakeVoiceServer, voice: ReceivingVoiceClient) -> None:
    heard = Heard(voice)
    speaker = Speaker(ssrc=6161)
    await server.speaking(ALICE, 6161)
    await send_paced(server, speaker.packets(tone_48k_stereo(500, 0.3)), 0.02)
    await wait_until(lambda: len(heard.per_user[ALICE]) >= 15)
    selects = len(server.ops_received(1))
    assert server._ws is not None
    await server._ws.close(code=1001)  # the voice server goes away (a restart, a network blip)
    await wait_until(lambda: len(server.ops_received(1)) > selects, 20)  # discord.py reconnected by itself
    await wait_until(voice.is_connected, 20)
    before = len(heard.per_user[ALICE])
    await server.speaking(ALICE, 6161)
    await send_paced(server, speaker.packets(tone_48k_stereo(500, 0.3)), 0.02)
    await wait_until(lambda: len(heard.per_user[ALICE]) >= before + 10, 10)  # and the bot hears again


async def test_a_frame_reaches_the_room_handler_in_its_own_delivery_not_at_a_clock_tick(
    server: FakeVoiceServer, voice: ReceivingVoiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mixer sends a slot as soon as it is complete: with one speaker, every frame is handed to the room handler
    inside the event-loop callback that delivered it from the socket thread, never at a deadline check of the room
    clock; the clock's checks send only what is due by the deadline (the silence tail)."""
    handed: list[tuple[bool, bytes]] = []  # (handed during a deadline check, slot)
    checking = False
    deadline_check = voice._tick_room

    def check() -> float | None:
        nonlocal checking
        checking = True
        try:
            return deadline_check()
        finally:
            checking = False

    monkeypatch.setattr(voice, "_tick_room", check)
    voice.set_room_audio_handler(lambda pcm16: handed.append((checking, pcm16)))
    speaker = Speaker(ssrc=4141)
    await server.speaking(ALICE, 4141)
    packets = speaker.packets(tone_48k_stereo(440, 0.3), silence_tail=5)
    await send_paced(server, packets, 0.02)
    await wait_until(lambda: voice.metrics.get("decoded") == len(packets) - 5 and not voice.room.active)
    voiced = [at_deadline for at_deadline, pcm16 in handed if any(pcm16)]
    assert len(voiced) == len(packets) - 5  # every frame reached the room stream, once
    # each in its own delivery (a frame held up on a loaded machine may, exceptionally, leave at a deadline)
    assert not voiced[0] and voiced.count(True) <= len(voiced) // 10
    silent = [at_deadline for at_deadline, pcm16 in handed if not any(pcm16)]
    assert len(silent) >= 15 and all(silent)  # the 300 ms tail, paced by the clock's deadlines
