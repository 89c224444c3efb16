"""The shared voice sender: real Opus sources, to the loopback voice server and to recording connections."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import numpy as np
import pytest

from bot.voice.client import ReceivingVoiceClient
from bot.voice.playback import OPUS_SILENCE_FRAME, OpusPlaybackSource, PlaybackSource
from bot.voice.rtp import parse_rtp
from bot.voice.sender import MAX_CONSECUTIVE_FAILURES, TRAILING_SILENCE_FRAMES, VoiceSender
from bot.voice.transport_crypto import RtpSizeDecryptor
from tests.voice.fake_gateway import FakeVoiceServer, wait_until
from tests.voice.packets import aligned_snr_db, mono


def tone_24k(seconds: float, frequency_hz: float = 440.0) -> bytes:
    t = np.arange(int(seconds * 24_000)) / 24_000
    pcm: bytes = np.rint(9000 * np.sin(2 * np.pi * frequency_hz * t)).astype("<i2").tobytes()
    return pcm


class RecordingVoice:
    """Stands in for a voice connection: records what the sender hands it (the wire is tested on loopback)."""

    def __init__(self, clock: list[float] | None = None) -> None:
        self.connected = True
        self.packets: list[bytes] = []
        self.sent_at: list[float] = []
        self.speaking: list[bool] = []
        self._clock = clock
        self.fail_sends = False

    def is_connected(self) -> bool:
        return self.connected

    def send_audio_packet(self, data: bytes, *, encode: bool = True) -> None:
        assert encode is False
        if self.fail_sends:
            raise OSError("socket is gone")
        self.packets.append(data)
        self.sent_at.append(self._clock[0] if self._clock is not None else time.monotonic())

    def set_speaking_threadsafe(self, speaking: bool) -> None:
        self.speaking.append(speaking)

    def audio_packets(self) -> int:
        return sum(1 for p in self.packets if p != OPUS_SILENCE_FRAME)


def source() -> OpusPlaybackSource:
    return OpusPlaybackSource(prebuffer_ms=0, lead_silence_ms=0)


# -- through the real voice client to the loopback voice server -----------------------------------------------------


async def test_an_answer_reaches_the_server_with_speaking_on_then_five_silence_frames_and_speaking_off(
    server: FakeVoiceServer, voice: ReceivingVoiceClient
) -> None:
    sender = VoiceSender()
    playback = OpusPlaybackSource(prebuffer_ms=60, lead_silence_ms=0)
    speaking_ops_before = len(server.ops_received(5))  # discord.py sends one on connecting
    voice.play_source(playback, sender=sender)
    assert sender.playing_on(voice) and not voice.is_playing()  # no discord.py player thread
    answer = tone_24k(1.0)
    for start in range(0, len(answer), 4800):
        playback.feed("item_a", answer[start : start + 4800])
    await wait_until(lambda: playback.played_ms("item_a") >= 999 and not playback.is_playing)
    await wait_until(lambda: [m["d"]["speaking"] for m in server.ops_received(5)[speaking_ops_before:]] == [1, 0])
    await asyncio.sleep(0.2)  # idle: nothing more is sent
    sent = len(server.voice_datagrams)
    await asyncio.sleep(0.1)
    assert len(server.voice_datagrams) == sent

    decryptor = RtpSizeDecryptor(server.secret_key)
    payloads = [decryptor.decrypt(parse_rtp(d)) for d in server.voice_datagrams]
    assert payloads[-TRAILING_SILENCE_FRAMES:] == [OPUS_SILENCE_FRAME] * TRAILING_SILENCE_FRAMES
    assert OPUS_SILENCE_FRAME not in payloads[: -TRAILING_SILENCE_FRAMES - 1]  # the answer itself, all audio
    pcm, _ = server.decode_bot_audio()
    reference = np.repeat(np.rint(9000 * np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000)), 2)
    snr, corr, _ = aligned_snr_db(mono(reference.astype("<i2").tobytes()), mono(pcm))
    assert corr > 0.95 and snr > 10, (snr, corr)

    voice.stop()
    assert not sender.playing_on(voice)
    await wait_until(lambda: not sender.running)


async def test_answers_play_again_after_a_voice_gateway_reconnect(
    server: FakeVoiceServer, voice: ReceivingVoiceClient
) -> None:
    sender = VoiceSender()
    playback = source()
    voice.play_source(playback, sender=sender)
    selects = len(server.ops_received(1))
    assert server._ws is not None
    await server._ws.close(code=1001)  # the voice server goes away; discord.py reconnects by itself
    await wait_until(lambda: len(server.ops_received(1)) > selects, 20)
    await wait_until(voice.is_connected, 20)
    speaking_before, sent_before = len(server.ops_received(5)), len(server.voice_datagrams)
    playback.feed("after", tone_24k(0.3))
    await wait_until(lambda: playback.played_ms("after") >= 299 and not playback.is_playing)
    await wait_until(lambda: len(server.voice_datagrams) >= sent_before + 15 + TRAILING_SILENCE_FRAMES)
    assert [m["d"]["speaking"] for m in server.ops_received(5)[speaking_before:]][:1] == [1]  # on the new socket
    assert sender.playing_on(voice)
    voice.stop()


class BrokenSource(OpusPlaybackSource):
    """A source with a bug: every read raises."""

    def read(self) -> bytes:
        raise RuntimeError("source bug")


async def test_the_voice_client_hears_on_the_event_loop_when_its_playback_fails_for_good(
    voice: ReceivingVoiceClient,
) -> None:
    sender = VoiceSender(threaded=False)
    failed: list[bool] = []
    playback = BrokenSource(prebuffer_ms=0, lead_silence_ms=0)
    voice.play_source(playback, sender=sender, on_failed=lambda: failed.append(voice.loop.is_running()))
    playback.feed("a", tone_24k(2.0))
    for _ in range(MAX_CONSECUTIVE_FAILURES):
        sender.tick()
    await wait_until(lambda: failed == [True])
    assert not sender.playing_on(voice)


async def test_disconnecting_the_voice_client_takes_it_off_the_sender(
    server: FakeVoiceServer, voice: ReceivingVoiceClient
) -> None:
    sender = VoiceSender()
    voice.play_source(source(), sender=sender)
    assert sender.connections == 1
    await voice.disconnect(force=True)
    assert sender.connections == 0
    await wait_until(lambda: not sender.running)


async def test_playing_without_a_sender_still_uses_discordpys_player(voice: ReceivingVoiceClient) -> None:
    sender = VoiceSender()
    voice.play_source(source(), sender=sender)
    voice.play_source(source())  # switching to a player thread of its own leaves the shared sender
    assert voice.is_playing() and not sender.playing_on(voice)
    voice.stop()
    assert not voice.is_playing()


# -- the sender's rules, one 20 ms tick at a time ---------------------------------------------------------------------


def test_idle_sources_are_not_read_and_cost_no_packets() -> None:
    sender, voice, playback = VoiceSender(threaded=False), RecordingVoice(), source()
    sender.add(voice, playback)
    try:
        for _ in range(10):
            sender.tick()
        assert voice.packets == [] and voice.speaking == []
        playback.feed("a", tone_24k(0.1))
        for _ in range(20):
            sender.tick()
        assert voice.audio_packets() == 5  # 100 ms of answer
        assert voice.packets[5:] == [OPUS_SILENCE_FRAME] * TRAILING_SILENCE_FRAMES  # then five, then nothing
        assert voice.speaking == [True, False]
    finally:
        sender.close()


def test_the_lead_in_speaks_silence_while_the_model_thinks_and_the_answer_follows_at_the_next_tick() -> None:
    clock_s = [10.0]
    sender, voice = VoiceSender(threaded=False), RecordingVoice()
    playback = OpusPlaybackSource(lead_silence_ms=200, max_lead_in_ms=1000, clock=lambda: clock_s[0])
    sender.add(voice, playback)

    def ticks(count: int) -> None:
        for _ in range(count):
            sender.tick()
            clock_s[0] += 0.02

    try:
        playback.start_lead_in()  # the session asked for an answer
        ticks(15)  # the model thinks for 300 ms
        assert voice.speaking == [True] and voice.packets == [OPUS_SILENCE_FRAME] * 15
        playback.feed("a", tone_24k(0.1))  # its first audio
        ticks(1)
        assert voice.packets[15] != OPUS_SILENCE_FRAME  # on the next tick: no lead silence or start-up wait added
        ticks(20)
        assert voice.audio_packets() == 5
        assert voice.packets[20:] == [OPUS_SILENCE_FRAME] * TRAILING_SILENCE_FRAMES
        assert voice.speaking == [True, False]

        # No answer within the bound: the lead-in ends like an answer does.
        clock_s[0] += 1.0
        sent = len(voice.packets)
        playback.start_lead_in()
        ticks(60)
        lead_in = voice.packets[sent:]
        assert set(lead_in) == {OPUS_SILENCE_FRAME}
        assert len(lead_in) - TRAILING_SILENCE_FRAMES in (50, 51)  # 1 s of ticks (the clock here adds up floats)
        assert voice.speaking == [True, False, True, False]
    finally:
        sender.close()


def test_a_barge_in_ends_the_audio_at_the_next_tick() -> None:
    sender, voice, playback = VoiceSender(threaded=False), RecordingVoice(), source()
    sender.add(voice, playback)
    try:
        playback.feed("a", tone_24k(2.0))
        for _ in range(10):
            sender.tick()
        played = playback.clear()
        for _ in range(20):
            sender.tick()
        assert voice.audio_packets() == 10 and played == {"a": pytest.approx(200)}
        assert voice.packets[10:] == [OPUS_SILENCE_FRAME] * TRAILING_SILENCE_FRAMES
        assert voice.speaking == [True, False]
    finally:
        sender.close()


def test_while_the_connection_is_down_the_answer_waits_and_speaking_is_sent_again() -> None:
    sender, voice, playback = VoiceSender(threaded=False), RecordingVoice(), source()
    sender.add(voice, playback)
    try:
        playback.feed("a", tone_24k(0.2))
        for _ in range(3):
            sender.tick()
        voice.connected = False
        for _ in range(20):
            sender.tick()
        assert voice.audio_packets() == 3 and playback.played_ms("a") == pytest.approx(60)  # not read while down
        voice.connected = True
        for _ in range(20):
            sender.tick()
        assert voice.audio_packets() == 10  # the rest of the answer, nothing lost
        assert voice.speaking == [True, True, False]
    finally:
        sender.close()


def test_a_closed_source_is_dropped_with_speaking_off() -> None:
    sender, voice, playback = VoiceSender(threaded=False), RecordingVoice(), source()
    sender.add(voice, playback)
    playback.feed("a", tone_24k(1.0))
    sender.tick()
    playback.close()
    sender.tick()
    assert sender.connections == 0 and voice.speaking == [True, False]
    sender.close()


def test_one_failing_connection_does_not_touch_the_others(caplog: pytest.LogCaptureFixture) -> None:
    sender = VoiceSender(threaded=False)
    broken, healthy = RecordingVoice(), RecordingVoice()
    broken_source, healthy_source = source(), source()
    dropped: list[str] = []
    sender.add(broken, broken_source, on_dropped=lambda: dropped.append("broken"))
    sender.add(healthy, healthy_source, on_dropped=lambda: dropped.append("healthy"))
    broken.fail_sends = True
    try:
        broken_source.feed("a", tone_24k(2.0))
        healthy_source.feed("b", tone_24k(2.0))
        with caplog.at_level(logging.ERROR, logger="bot.voice.sender"):
            for _ in range(MAX_CONSECUTIVE_FAILURES - 1):
                sender.tick()
            assert sender.playing_on(broken)  # still trying
            for _ in range(10):
                sender.tick()
        assert not sender.playing_on(broken) and sender.playing_on(healthy)
        assert healthy.audio_packets() == MAX_CONSECUTIVE_FAILURES + 9  # every frame, on time
        assert sender.stats.errors == MAX_CONSECUTIVE_FAILURES
        assert broken.speaking == [True, False]
        assert dropped == ["broken"]  # the owner hears of it once
        assert "the connection goes on" in caplog.text and "no longer played to" in caplog.text
    finally:
        sender.close()
    assert dropped == ["broken"]  # closing is not a failure


def test_a_few_failed_frames_lose_only_those_frames() -> None:
    sender, voice, playback = VoiceSender(threaded=False), RecordingVoice(), source()
    sender.add(voice, playback)
    try:
        playback.feed("a", tone_24k(0.4))
        for _ in range(5):
            sender.tick()
        voice.fail_sends = True  # e.g. a DAVE transition
        for _ in range(3):
            sender.tick()
        voice.fail_sends = False
        for _ in range(20):
            sender.tick()
        assert sender.playing_on(voice) and voice.audio_packets() == 20 - 3  # the answer goes on
    finally:
        sender.close()


def test_a_pcm_source_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Opus sources only"):
        VoiceSender().add(RecordingVoice(), PlaybackSource())


# -- the thread and its clock ---------------------------------------------------------------------------------------


def test_the_clock_restarts_after_a_stall_instead_of_bursting_missed_frames() -> None:
    clock = [100.0]
    done = threading.Event()
    voice, playback = RecordingVoice(clock), source()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds
        if len(sleeps) == 5:
            clock[0] += 0.5  # the process was descheduled for half a second
        if len(sleeps) == 30:
            sender.remove(voice)
            done.set()

    sender = VoiceSender(clock=lambda: clock[0], sleep=sleep)
    playback.feed("a", tone_24k(2.0))
    sender.add(voice, playback)
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while sender.running and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not sender.running  # the thread ends with its last connection
    gaps_ms = np.diff(voice.sent_at) * 1000
    assert sender.stats.clock_restarts == 1
    assert np.count_nonzero(gaps_ms < 19.9) == 0, gaps_ms  # never two frames back to back
    assert np.count_nonzero(gaps_ms > 20.1) == 1  # the stall itself, once
    assert all(s == pytest.approx(0.02) for s in sleeps[6:])  # a fresh drift-free clock afterwards


def test_the_thread_runs_only_while_something_is_attached() -> None:
    sender, voice, playback = VoiceSender(), RecordingVoice(), source()
    assert not sender.running
    sender.add(voice, playback)
    assert sender.running
    playback.feed("a", tone_24k(0.1))
    deadline = time.monotonic() + 5
    while voice.audio_packets() < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert voice.audio_packets() == 5  # the real thread sent the answer
    sender.close()
    assert not sender.running and voice.speaking[-1] is False
    sender.add(voice, source())  # and starts again for the next one
    assert sender.running
    sender.close()
