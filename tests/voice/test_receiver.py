"""The receive pipeline on packets made like Discord's: libopus frames encrypted by discord.py's own function."""

from __future__ import annotations

import random

import davey
import numpy as np

from bot.audio.formats import DISCORD_FRAME_BYTES, REALTIME_FRAME_BYTES
from bot.audio.level import rms_dbfs
from bot.voice.dave import DAVE_MAGIC_MARKER, DaveDecryptStep, is_dave_frame
from bot.voice.metrics import VoiceMetrics
from bot.voice.opus_decoder import FrameDecoder, OpusDecoder, speaker_decoder, speaker_decoder_24k_mono
from bot.voice.receiver import DecodedFrame, VoiceReceiver
from tests.voice.packets import (
    KEY,
    Speaker,
    aligned_snr_db,
    reference_24k,
    samples_24k,
    speech_48k_stereo,
    tone_48k_stereo,
)

ALICE, BOB = 1001, 1002


class Collected:
    def __init__(self) -> None:
        self.frames: list[DecodedFrame] = []
        self.silences: list[tuple[int, int | None]] = []

    def on_frame(self, frame: DecodedFrame) -> None:
        self.frames.append(frame)

    def on_silence(self, ssrc: int, user_id: int | None) -> None:
        self.silences.append((ssrc, user_id))

    def pcm(self, user_id: int) -> bytes:
        return b"".join(f.pcm16 for f in self.frames if f.user_id == user_id)


def make_receiver(**kwargs: object) -> tuple[VoiceReceiver, Collected]:
    """A receiver as the voice client makes it: speakers decoded straight to 24 kHz mono."""
    kwargs.setdefault("decoder_factory", speaker_decoder_24k_mono)
    got = Collected()
    receiver = VoiceReceiver(KEY, on_frame=got.on_frame, on_silence=got.on_silence, **kwargs)  # type: ignore[arg-type]
    return receiver, got


def test_speech_decodes_to_the_source() -> None:
    speech = speech_48k_stereo()
    speaker = Speaker(ssrc=11)
    receiver, got = make_receiver()
    receiver.map_ssrc(11, ALICE)
    for datagram in speaker.packets(speech, silence_tail=5):
        receiver.receive_datagram(datagram)
    pcm = got.pcm(ALICE)
    assert all(len(f.pcm16) == REALTIME_FRAME_BYTES for f in got.frames)
    assert all(f.level_dbfs == rms_dbfs(f.pcm16) for f in got.frames)  # measured once, on the socket thread
    assert len(pcm) == -(-len(speech) // DISCORD_FRAME_BYTES) * REALTIME_FRAME_BYTES  # a frame per packet
    snr, corr, lag = aligned_snr_db(reference_24k(speech), samples_24k(pcm))
    assert corr > 0.95, corr
    assert snr > 10, snr
    assert lag < 480  # Opus' look-ahead, well under a frame (24 kHz)
    assert got.silences == [(11, ALICE)] * 5
    assert receiver.metrics.get("decoded") == len(got.frames)
    assert receiver.metrics.get("silence") == 5


def test_extension_header_packets_decode_identically() -> None:
    tone = tone_48k_stereo(440, 0.5)
    plain, with_ext = Speaker(ssrc=1), Speaker(ssrc=2, extension_body=b"\x10\x7f\x00\x00")
    receiver, got = make_receiver()
    receiver.map_ssrc(1, ALICE)
    receiver.map_ssrc(2, BOB)
    for a, b in zip(plain.packets(tone), with_ext.packets(tone), strict=True):
        receiver.receive_datagram(a)
        receiver.receive_datagram(b)
    assert got.pcm(ALICE) == got.pcm(BOB) != b""


def test_two_speakers_are_kept_apart() -> None:
    low, high = tone_48k_stereo(300, 1.0), tone_48k_stereo(1200, 1.0)
    alice, bob = Speaker(ssrc=21), Speaker(ssrc=22, sequence=60000)
    receiver, got = make_receiver()
    receiver.map_ssrc(21, ALICE)
    receiver.map_ssrc(22, BOB)
    for a, b in zip(alice.packets(low), bob.packets(high), strict=True):
        receiver.receive_datagram(b)
        receiver.receive_datagram(a)
    for user, source in ((ALICE, low), (BOB, high)):
        snr, corr, _ = aligned_snr_db(reference_24k(source), samples_24k(got.pcm(user)))
        assert corr > 0.98 and snr > 15, (user, snr, corr)


def test_reorder_duplicates_loss_and_garbage_are_survived_and_counted() -> None:
    speech = speech_48k_stereo()
    speaker = Speaker(ssrc=31)
    datagrams = speaker.packets(speech)
    rng = random.Random(4)
    sent: list[bytes] = []
    lost = {20, 21, 60, 100}
    for index, datagram in enumerate(datagrams):
        if index in lost:
            continue
        sent.append(datagram)
        if index % 17 == 0:
            sent.append(datagram)  # duplicate
        if index % 23 == 0:
            sent.append(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80))))  # garbage
    # Swap neighbours here and there (reordering within the jitter depth).
    for index in range(5, len(sent) - 1, 11):
        sent[index], sent[index + 1] = sent[index + 1], sent[index]
    sent.append(bytes([0x80, 0xC9]) + bytes(30))  # an RTCP receiver report
    receiver, got = make_receiver()
    receiver.map_ssrc(31, ALICE)
    for datagram in sent:
        receiver.receive_datagram(datagram)
    receiver.flush()
    metrics = receiver.metrics.snapshot()
    assert metrics["lost"] == len(lost)
    assert metrics["fec"] + metrics.get("plc", 0) == len(lost)
    assert metrics["duplicate"] >= 1
    assert metrics["rtcp"] == 1
    assert metrics.get("runt", 0) + metrics.get("bad_rtp", 0) + metrics.get("decrypt_failed", 0) >= 1
    assert metrics.get("internal_error", 0) == 0
    pcm = got.pcm(ALICE)
    assert len(pcm) == len(datagrams) * REALTIME_FRAME_BYTES  # every slot played: real or concealed
    snr, corr, _ = aligned_snr_db(reference_24k(speech), samples_24k(pcm))
    assert corr > 0.9 and snr > 8, (snr, corr)


def test_wrong_key_is_dropped_without_disturbing_another_speaker() -> None:
    tone = tone_48k_stereo(500, 0.4)
    good, bad = Speaker(ssrc=41), Speaker(ssrc=42, key=bytes(32))
    receiver, got = make_receiver()
    receiver.map_ssrc(41, ALICE)
    receiver.map_ssrc(42, BOB)
    good_packets, bad_packets = good.packets(tone), bad.packets(tone)
    for a, b in zip(good_packets, bad_packets, strict=True):
        receiver.receive_datagram(b)
        receiver.receive_datagram(a)
    assert receiver.metrics.get("decrypt_failed") == len(bad_packets)
    assert got.pcm(BOB) == b""
    assert len(got.pcm(ALICE)) == len(good_packets) * REALTIME_FRAME_BYTES


def test_unknown_ssrc_is_parked_then_replayed_when_mapped() -> None:
    tone = tone_48k_stereo(700, 0.3)
    speaker = Speaker(ssrc=51)
    datagrams = speaker.packets(tone)
    receiver, got = make_receiver()
    for datagram in datagrams[:5]:
        receiver.receive_datagram(datagram)
    assert got.frames == []
    assert receiver.metrics.get("unknown_ssrc") == 5
    receiver.map_ssrc(51, ALICE)
    for datagram in datagrams[5:]:
        receiver.receive_datagram(datagram)
    assert len(got.pcm(ALICE)) == len(datagrams) * REALTIME_FRAME_BYTES


def test_unknown_ssrc_parking_is_bounded() -> None:
    receiver, got = make_receiver()
    for ssrc in range(100, 120):
        for datagram in Speaker(ssrc=ssrc).packets(tone_48k_stereo(400, 0.6)):
            receiver.receive_datagram(datagram)
    assert got.frames == []
    assert receiver.metrics.get("unknown_ssrc_dropped") > 0


def test_forget_user_drops_their_stream() -> None:
    speaker = Speaker(ssrc=61)
    receiver, got = make_receiver()
    receiver.map_ssrc(61, ALICE)
    receiver.receive_datagram(speaker.packets(tone_48k_stereo(400, 0.02))[0])
    receiver.forget_user(ALICE)
    assert receiver.user_for(61) is None
    receiver.receive_datagram(speaker.packets(tone_48k_stereo(400, 0.02))[0])
    assert len(got.frames) == 1
    assert receiver.metrics.get("unknown_ssrc") == 1


def test_no_key_yet_and_foreign_payload_type_are_counted() -> None:
    got = Collected()
    receiver = VoiceReceiver(None, on_frame=got.on_frame)
    speaker = Speaker(ssrc=71)
    receiver.map_ssrc(71, ALICE)
    datagram = speaker.packets(tone_48k_stereo(400, 0.02))[0]
    receiver.receive_datagram(datagram)
    assert receiver.metrics.get("no_key") == 1
    receiver.set_secret_key(KEY)
    receiver.receive_datagram(bytes([datagram[0], 0x60]) + datagram[2:])
    assert receiver.metrics.get("not_opus") == 1
    assert got.frames == []


def test_undecodable_opus_is_counted() -> None:
    speaker = Speaker(ssrc=81)
    receiver, got = make_receiver()
    receiver.map_ssrc(81, ALICE)
    # An Opus TOC byte claiming code 3 with an impossible frame count: libopus refuses it.
    receiver.receive_datagram(speaker.packet(b"\xff\xff")[1])
    assert receiver.metrics.get("opus_error") == 1
    assert got.frames == []
    receiver.receive_datagram(speaker.packets(tone_48k_stereo(400, 0.02))[0])
    assert len(got.frames) == 1


def test_dave_failures_are_counted_and_dropped() -> None:
    metrics = VoiceMetrics()

    class NoGroup:
        ready = True

        def decrypt(self, user_id: int, media_type: object, packet: bytes) -> bytes:
            raise ValueError("Failed to decrypt: NoDecryptorForUser")

        def can_passthrough(self, user_id: int) -> bool:
            return False

    dave = DaveDecryptStep(lambda: (NoGroup(), 1), metrics)
    receiver, got = make_receiver(dave=dave, metrics=metrics)
    receiver.map_ssrc(91, ALICE)
    for datagram in Speaker(ssrc=91).packets(tone_48k_stereo(400, 0.1), silence_tail=2):
        receiver.receive_datagram(datagram)
    assert metrics.get("dave_unencrypted") == 5
    assert got.frames == [] and len(got.silences) == 2


def test_dave_passthrough_decodes_when_call_is_not_e2ee() -> None:
    metrics = VoiceMetrics()
    dave = DaveDecryptStep(lambda: (None, 0), metrics)
    receiver, got = make_receiver(dave=dave, metrics=metrics)
    receiver.map_ssrc(92, ALICE)
    tone = tone_48k_stereo(400, 0.2)
    for datagram in Speaker(ssrc=92).packets(tone):
        receiver.receive_datagram(datagram)
    snr, corr, _ = aligned_snr_db(reference_24k(tone), samples_24k(got.pcm(ALICE)))
    assert corr > 0.98 and snr > 15, (snr, corr)


def test_never_raises_on_random_bytes() -> None:
    rng = np.random.default_rng(7)
    receiver, got = make_receiver()
    receiver.map_ssrc(0x01020304, ALICE)
    for _ in range(2000):
        size = int(rng.integers(0, 120))
        data = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        if size > 12 and rng.random() < 0.5:
            data[0] = 0x80 | (data[0] & 0x3F)
            data[1] = 0x78
            data[8:12] = (0x01020304).to_bytes(4, "big")
        receiver.receive_datagram(bytes(data))
    assert receiver.metrics.get("internal_error") == 0
    assert got.frames == []
    assert sum(receiver.metrics.snapshot().values()) >= 2000


# -- the receive path never invents audio --------------------------------------------------------------------------


def test_padding_only_packets_are_dropped_without_inventing_audio() -> None:
    speech = speech_48k_stereo()
    speaker = Speaker(ssrc=101)
    receiver, got = make_receiver()
    receiver.map_ssrc(101, ALICE)
    opus_frames = speaker.opus_frames(speech)
    padding_sent = 0
    for index, opus in enumerate(opus_frames):
        receiver.receive_datagram(speaker.packet(opus)[1])
        if index % 10 == 0:  # a burst of padding between frames, each with its own sequence number
            for _ in range(3):
                receiver.receive_datagram(speaker.padding_packet())
                padding_sent += 1
    for _ in range(5):  # and after the last frame
        receiver.receive_datagram(speaker.padding_packet())
        padding_sent += 1
    receiver.flush()
    metrics = receiver.metrics.snapshot()
    assert metrics["empty_payload"] == padding_sent
    assert len(got.frames) == len(opus_frames) == metrics["decoded"]  # one frame per real packet, nothing made up
    assert not any(frame.concealed for frame in got.frames)
    assert metrics.get("plc", 0) == metrics.get("fec", 0) == metrics.get("lost", 0) == 0
    snr, corr, _ = aligned_snr_db(reference_24k(speech), samples_24k(got.pcm(ALICE)))
    assert corr > 0.95 and snr > 10, (snr, corr)


def test_a_padding_packet_after_a_loss_does_not_break_concealment() -> None:
    tone = tone_48k_stereo(500, 0.3)
    speaker = Speaker(ssrc=102)
    receiver, got = make_receiver()
    receiver.map_ssrc(102, ALICE)
    datagrams = [speaker.packet(opus)[1] for opus in speaker.opus_frames(tone)]
    padding = speaker.padding_packet()
    for index, datagram in enumerate(datagrams):
        if index != 4:  # lost
            receiver.receive_datagram(datagram)
    receiver.receive_datagram(padding)
    receiver.flush()
    metrics = receiver.metrics.snapshot()
    assert metrics.get("internal_error", 0) == 0
    assert metrics["lost"] == 1 and metrics.get("fec", 0) + metrics.get("plc", 0) == 1
    assert [frame.concealed for frame in got.frames].count(True) == 1  # the lost one, labelled as such
    assert len(got.frames) == len(datagrams)


class ReplayRefusingSession:
    """Stands in for a ``davey.DaveSession`` in an established group. Like davey, it refuses a frame it has already
    decrypted (the nonce check against replays); it strips the DAVE trailer of the frames it accepts."""

    ready = True

    def __init__(self) -> None:
        self.decrypted: list[bytes] = []

    def decrypt(self, user_id: int, media_type: davey.MediaType, packet: bytes) -> bytes:
        assert user_id == ALICE and media_type is davey.MediaType.audio
        if packet in self.decrypted:
            raise ValueError("Failed to decrypt: replayed nonce")
        self.decrypted.append(packet)
        return packet[: -(4 + len(DAVE_MAGIC_MARKER))]

    def can_passthrough(self, user_id: int) -> bool:
        return False


def test_duplicates_are_dropped_before_dave_decryption() -> None:
    metrics = VoiceMetrics()
    session = ReplayRefusingSession()
    receiver, got = make_receiver(dave=DaveDecryptStep(lambda: (session, 1), metrics), metrics=metrics)
    receiver.map_ssrc(103, ALICE)
    speaker = Speaker(ssrc=103)
    opus_frames = speaker.opus_frames(tone_48k_stereo(600, 0.4))
    sent = 0
    for nonce, opus in enumerate(opus_frames):
        e2ee = opus + nonce.to_bytes(4, "big") + DAVE_MAGIC_MARKER
        assert is_dave_frame(e2ee)
        datagram = speaker.packet(e2ee)[1]
        copies = 3 if nonce % 4 == 0 else 1  # the network duplicates some packets
        for _ in range(copies):
            receiver.receive_datagram(datagram)
            sent += 1
    receiver.flush()
    assert metrics.get("dave_failed") == 0
    assert metrics.get("duplicate") == sent - len(opus_frames)
    assert len(session.decrypted) == metrics.get("dave_decrypted") == len(opus_frames)
    assert len(got.frames) == len(opus_frames)


# -- state is freed with the SSRC ------------------------------------------------------------------------------------


class RecordingFactory:
    def __init__(self) -> None:
        self.made: list[FrameDecoder] = []

    def __call__(self) -> FrameDecoder:
        decoder = speaker_decoder()
        self.made.append(decoder)
        return decoder


def test_a_new_ssrc_for_a_user_frees_the_old_decoder() -> None:
    factory = RecordingFactory()
    receiver, got = make_receiver(decoder_factory=factory)
    tone = tone_48k_stereo(400, 0.1)
    for ssrc in (111, 112, 113):  # alice reconnects twice, each time with a new SSRC
        receiver.map_ssrc(ssrc, ALICE)
        for datagram in Speaker(ssrc=ssrc).packets(tone):
            receiver.receive_datagram(datagram)
    receiver.map_ssrc(120, BOB)
    for datagram in Speaker(ssrc=120).packets(tone):
        receiver.receive_datagram(datagram)
    assert receiver.streams_held == 2  # alice's current SSRC and bob's
    assert receiver.user_for(111) is None and receiver.user_for(112) is None and receiver.user_for(113) == ALICE
    decoders = [decoder for decoder in factory.made if isinstance(decoder, OpusDecoder)]
    assert len(decoders) == 4  # libopus bound directly (the fallback has no close)
    assert [decoder.closed for decoder in decoders] == [True, True, False, False]
    assert len(got.pcm(ALICE)) == 3 * len(got.pcm(BOB))


def test_forgetting_a_user_frees_their_decoders() -> None:
    factory = RecordingFactory()
    receiver, _got = make_receiver(decoder_factory=factory)
    receiver.map_ssrc(121, ALICE)
    for datagram in Speaker(ssrc=121).packets(tone_48k_stereo(400, 0.1)):
        receiver.receive_datagram(datagram)
    assert receiver.streams_held == 1
    receiver.forget_user(ALICE)
    assert receiver.streams_held == 0
    decoder = factory.made[0]
    assert isinstance(decoder, OpusDecoder) and decoder.closed
