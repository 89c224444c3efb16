"""CPU per conversation: the receive path and the playback path, per second of audio, stage by stage.

Receive: real libopus packets encrypted the way Discord sends them (``tests/voice/packets.py``) go through the bot's
:class:`~bot.voice.receiver.VoiceReceiver` (RTP, transport decrypt, jitter buffer, Opus decode straight to 24 kHz
mono, the frame's level), the :class:`~bot.voice.room.RoomMixer` and the Realtime protocol's
``input_audio_buffer.append`` (base64 + JSON), as the bot does for each 20 ms of room audio. No resampler: the
48k stereo -> 24k mono stage is timed for comparison only (the bot ran it per frame before issue 16).

Playback: ``response.output_audio.delta`` messages as the server sends them go through the Realtime protocol
(JSON + base64 decode) and the bot's :class:`~bot.voice.playback.OpusPlaybackSource` (feed, 20 ms reads, Opus
encode of the answer as it comes, 24 kHz mono, with :func:`~bot.voice.opus_encoder.answer_encoder`), then transport
encryption (discord.py's own function, as ``VoiceClient.send_audio_packet`` runs it). The stages also time
discord.py's own encoder (``discord.opus.Encoder``, ``VoiceClient.play``'s defaults) and the bot's encoder at 48 kHz
stereo (the ``VOICE_ENCODING=48k-stereo`` setting) for comparison.

Each figure is the least process CPU time of several runs, in CPU milliseconds per second of audio.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import discord.opus

from bench.timing import Options, cpu_seconds
from bot.audio.formats import (
    DISCORD_FRAME_BYTES,
    DISCORD_FRAME_SAMPLES,
    DISCORD_SILENCE_FRAME,
    FRAME_MS,
    REALTIME,
    REALTIME_FRAME_BYTES,
)
from bot.audio.resample import DiscordToRealtimeResampler
from bot.persona import default_persona, persona_instructions
from bot.realtime.client_events import SessionSettings
from bot.realtime.protocol import RealtimeProtocol
from bot.voice.opus_decoder import FrameDecoder, speaker_decoder, speaker_decoder_24k_mono
from bot.voice.opus_encoder import DISCORD_48K_STEREO, NATIVE_24K_MONO, answer_encoder
from bot.voice.playback import OPUS_SILENCE_FRAME, OpusPlaybackSource, PlaybackSource
from bot.voice.receiver import DecodedFrame, VoiceReceiver
from bot.voice.room import RoomMixer
from bot.voice.rtp import parse_rtp
from bot.voice.transport_crypto import RtpSizeDecryptor
from tests.voice.packets import KEY, Speaker, _DiscordPyEncryptor, discordpy_encrypt, rtp_header, speech_48k_stereo

#: Speakers in the room for the receive path (each adds a decrypt and a decode per 20 ms).
SPEAKER_COUNTS = (1, 3)
#: Sizes (bytes of 24 kHz mono pcm16) of the answer's audio deltas: uneven, a few thousand bytes (as in part 1).
DELTA_SIZES = (4800, 2400, 7200, 1202, 9600, 3598)
_FIRST_SSRC = 5000
_FIRST_USER = 9000
#: discord.py's Decoder constructor is untyped; typed through this alias.
_new_discordpy_decoder: Callable[[], FrameDecoder] = discord.opus.Decoder


@dataclass(frozen=True, slots=True)
class _Fixture:
    """Inputs built once, outside the timed runs."""

    frames_48k: list[bytes]  # 20 ms frames of 48 kHz stereo speech
    datagrams: list[list[bytes]]  # per speaker: one encrypted voice packet per frame
    opus: list[bytes]  # the first speaker's Opus frames
    deltas: list[str]  # response.output_audio.delta messages carrying the speech at 24 kHz mono
    audio_s: float


def _settings() -> SessionSettings:
    return SessionSettings(instructions=persona_instructions(default_persona()))


def _fixture(speakers: int, seconds: float) -> _Fixture:
    speech = speech_48k_stereo()
    wanted = int(seconds * 1000 / FRAME_MS) * DISCORD_FRAME_BYTES
    pcm = (speech * (wanted // len(speech) + 1))[:wanted]
    frames = [pcm[i : i + DISCORD_FRAME_BYTES] for i in range(0, len(pcm), DISCORD_FRAME_BYTES)]
    talkers = [Speaker(_FIRST_SSRC + index) for index in range(speakers)]
    opus = talkers[0].opus_frames(pcm)
    datagrams = [[talker.packet(frame)[1] for frame in opus] for talker in talkers]
    down = DiscordToRealtimeResampler()
    pcm_24k = down.process(pcm) + down.flush()
    deltas: list[str] = []
    position = 0
    while position < len(pcm_24k):
        size = DELTA_SIZES[len(deltas) % len(DELTA_SIZES)]
        chunk = pcm_24k[position : position + size]
        position += size
        event = {
            "type": "response.output_audio.delta",
            "event_id": f"ev_{len(deltas)}",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(chunk).decode("ascii"),
        }
        deltas.append(json.dumps(event))
    return _Fixture(frames, datagrams, opus, deltas, len(frames) * FRAME_MS / 1000)


class _Clock:
    """A hand-advanced clock for the room mixer (the room is ticked as fast as the CPU allows)."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


# -- receive path -------------------------------------------------------------------------------------------------


def _receive_path(fixture: _Fixture) -> int:
    """Datagrams -> receiver (24 kHz mono) -> room -> append events; returns the appends sent."""
    clock = _Clock()
    room = RoomMixer(clock, pcm_format=REALTIME)

    def on_frame(frame: DecodedFrame) -> None:
        if frame.user_id is not None:
            room.push(frame.user_id, frame.pcm16, frame.level_dbfs)

    receiver = VoiceReceiver(KEY, on_frame=on_frame, decoder_factory=speaker_decoder_24k_mono)
    for index in range(len(fixture.datagrams)):
        receiver.map_ssrc(_FIRST_SSRC + index, _FIRST_USER + index)
    protocol = RealtimeProtocol(_settings(), "ga")
    sent = 0
    for position in range(len(fixture.frames_48k)):
        for packets in fixture.datagrams:
            receiver.receive_datagram(packets[position])
        mixed = room.tick()
        clock.now_s += FRAME_MS / 1000
        if mixed is not None:
            protocol.push_audio(mixed)
            sent += len(protocol.data_to_send())
    return sent


def _decrypt(fixture: _Fixture) -> None:
    decryptor = RtpSizeDecryptor(KEY)
    for datagram in fixture.datagrams[0]:
        decryptor.decrypt(parse_rtp(datagram))


def _decode(fixture: _Fixture, new_decoder: Callable[[], FrameDecoder]) -> None:
    decoder = new_decoder()
    for frame in fixture.opus:
        decoder.decode(frame, fec=False)


def _mix(frames_24k: list[bytes], speakers: int) -> None:
    clock = _Clock()
    room = RoomMixer(clock, pcm_format=REALTIME)
    for frame in frames_24k:
        for user in range(speakers):
            room.push(_FIRST_USER + user, frame, -20.0)
        room.tick()
        clock.now_s += FRAME_MS / 1000


def _resample(fixture: _Fixture) -> None:
    resampler = DiscordToRealtimeResampler()
    for frame in fixture.frames_48k:
        resampler.process(frame)


def _append(fixture: _Fixture, frames_24k: list[bytes]) -> None:
    protocol = RealtimeProtocol(_settings(), "ga")
    for frame in frames_24k:
        protocol.push_audio(frame)
        protocol.data_to_send()


# -- playback path ------------------------------------------------------------------------------------------------


def _read_ready(source: PlaybackSource, sink: Callable[[bytes], None]) -> None:
    while source.buffered_ms >= FRAME_MS:
        sink(source.read())


def _playback_path(fixture: _Fixture) -> int:
    """Deltas -> protocol -> the bot's Opus source (20 ms reads, encode at 24 kHz mono) -> transport encrypt; returns
    frames."""
    protocol = RealtimeProtocol(_settings(), "ga")
    source = OpusPlaybackSource(lead_silence_ms=0, prebuffer_ms=0)  # read only when a frame waits: never dry
    encryptor = _DiscordPyEncryptor(KEY)
    frames = 0

    def send(opus: bytes) -> None:
        nonlocal frames
        discordpy_encrypt(rtp_header(frames, frames * DISCORD_FRAME_SAMPLES, 1), opus, encryptor)
        frames += 1

    for message in fixture.deltas:
        for output in protocol.receive_text(message):
            pcm16 = getattr(output, "pcm16", None)
            if isinstance(pcm16, bytes):
                source.feed("item_1", pcm16)
        _read_ready(source, send)
    while (packet := source.read()) != OPUS_SILENCE_FRAME:
        send(packet)
    return frames


def _parse_deltas(fixture: _Fixture) -> list[bytes]:
    protocol = RealtimeProtocol(_settings(), "ga")
    chunks: list[bytes] = []
    for message in fixture.deltas:
        for output in protocol.receive_text(message):
            pcm16 = getattr(output, "pcm16", None)
            if isinstance(pcm16, bytes):
                chunks.append(pcm16)
    return chunks


def _feed_and_read(chunks: list[bytes]) -> None:
    source = PlaybackSource(lead_silence_ms=0, prebuffer_ms=0, pcm_format=REALTIME)
    for chunk in chunks:
        source.feed("item_1", chunk)
        _read_ready(source, lambda _frame: None)
    while source.read() is not source.silence_frame:
        pass


def _encode(fixture: _Fixture) -> None:
    encoder = discord.opus.Encoder()
    for frame in fixture.frames_48k:
        encoder.encode(frame, DISCORD_FRAME_SAMPLES)


def _encode_ours_48k(fixture: _Fixture) -> None:
    encoder = answer_encoder(DISCORD_48K_STEREO)
    for frame in fixture.frames_48k:
        encoder.encode(frame, DISCORD_FRAME_SAMPLES)


def _encode_ours(frames_24k: list[bytes]) -> None:
    encoder = answer_encoder(NATIVE_24K_MONO)
    for frame in frames_24k:
        encoder.encode(frame, NATIVE_24K_MONO.frame_samples)


def _encode_silence(fixture: _Fixture) -> None:
    encoder = discord.opus.Encoder()
    for _frame in fixture.frames_48k:
        encoder.encode(DISCORD_SILENCE_FRAME, DISCORD_FRAME_SAMPLES)


def _encrypt(fixture: _Fixture) -> None:
    encryptor = _DiscordPyEncryptor(KEY)
    for index, opus in enumerate(fixture.opus):
        discordpy_encrypt(rtp_header(index, index * DISCORD_FRAME_SAMPLES, 1), opus, encryptor)


# -- the benchmark ------------------------------------------------------------------------------------------------


def run(options: Options) -> dict[str, Any]:
    """CPU ms per second of audio for every stage and for both whole paths; conversations per core."""
    repeats = 1 if options.quick else options.repeats
    seconds = 1.0 if options.quick else 12.0
    fixtures = {count: _fixture(count, seconds) for count in SPEAKER_COUNTS}
    one = fixtures[1]
    audio_s = one.audio_s
    down = DiscordToRealtimeResampler()
    pcm_24k = b"".join(down.process(frame) for frame in one.frames_48k) + down.flush()
    frames_24k = [pcm_24k[i : i + REALTIME_FRAME_BYTES] for i in range(0, len(pcm_24k), REALTIME_FRAME_BYTES)]
    frames_24k = [frame + bytes(REALTIME_FRAME_BYTES - len(frame)) for frame in frames_24k]
    chunks_24k = _parse_deltas(one)

    def ms_per_s(work: Callable[[], object], fixture: _Fixture = one) -> float:
        return round(1000 * cpu_seconds(work, repeats) / fixture.audio_s, 3)

    stages: list[dict[str, Any]] = [
        {
            "path": "receive",
            "stage": "transport decrypt (RTP parse + XChaCha20-Poly1305)",
            "ms_per_s": ms_per_s(lambda: _decrypt(one)),
        },
        {
            "path": "receive",
            "key": "decode_discordpy",
            "stage": "Opus decode (libopus via discord.py's Decoder)",
            "ms_per_s": ms_per_s(lambda: _decode(one, _new_discordpy_decoder)),
        },
        {
            "path": "receive",
            "key": "decode_bot_48k",
            "stage": "Opus decode at 48 kHz stereo (the bot's decoder, the same libopus; before issue 16)",
            "ms_per_s": ms_per_s(lambda: _decode(one, speaker_decoder)),
        },
        {
            "path": "receive",
            "key": "decode_bot",
            "stage": "Opus decode straight to 24 kHz mono (the bot's receiver)",
            "ms_per_s": ms_per_s(lambda: _decode(one, speaker_decoder_24k_mono)),
        },
        {"path": "receive", "stage": "room mixer, 1 speaker", "ms_per_s": ms_per_s(lambda: _mix(frames_24k, 1))},
        {"path": "receive", "stage": "room mixer, 3 speakers", "ms_per_s": ms_per_s(lambda: _mix(frames_24k, 3))},
        {
            "path": "receive",
            "stage": "resample 48k stereo -> 24k mono (off the path since issue 16)",
            "ms_per_s": ms_per_s(lambda: _resample(one)),
        },
        {
            "path": "receive",
            "stage": "input_audio_buffer.append (base64 + JSON)",
            "ms_per_s": ms_per_s(lambda: _append(one, frames_24k)),
        },
        {
            "path": "playback",
            "stage": "audio delta (JSON + base64 decode)",
            "ms_per_s": ms_per_s(lambda: _parse_deltas(one)),
        },
        {
            "path": "playback",
            "stage": "PlaybackSource feed (24k mono, no resampler) + 20 ms reads",
            "ms_per_s": ms_per_s(lambda: _feed_and_read(chunks_24k)),
        },
        {
            "path": "playback",
            "key": "encode_discordpy",
            "stage": "Opus encode (discord.py Encoder)",
            "ms_per_s": ms_per_s(lambda: _encode(one)),
        },
        {
            "path": "playback",
            "key": "encode_bot_48k",
            "stage": f"Opus encode at 48 kHz stereo (the bot's encoder, complexity {DISCORD_48K_STEREO.complexity})",
            "ms_per_s": ms_per_s(lambda: _encode_ours_48k(one)),
        },
        {
            "path": "playback",
            "key": "encode_bot",
            "stage": (
                f"Opus encode of the answer as it comes, 24 kHz mono (low-delay, "
                f"{NATIVE_24K_MONO.bitrate_bps // 1000} kbps, complexity {NATIVE_24K_MONO.complexity})"
            ),
            "ms_per_s": ms_per_s(lambda: _encode_ours(frames_24k)),
        },
        {
            "path": "playback",
            "stage": "Opus encode of silence (discord.py's player encodes every frame; the bot's source does not)",
            "ms_per_s": ms_per_s(lambda: _encode_silence(one)),
        },
        {"path": "playback", "stage": "transport encrypt (discord.py)", "ms_per_s": ms_per_s(lambda: _encrypt(one))},
    ]
    receive = {
        count: ms_per_s(functools.partial(_receive_path, fixture), fixture) for count, fixture in fixtures.items()
    }
    playback = ms_per_s(lambda: _playback_path(one))
    paths: list[dict[str, Any]] = []
    for count in SPEAKER_COUNTS:
        both = receive[count] + playback
        paths.append(
            {
                "speakers": count,
                "receive_ms_per_s": receive[count],
                "playback_ms_per_s": playback,
                "both_ms_per_s": round(both, 3),
                "conversations_per_core": round(1000 / max(both, 1e-9), 1),
            }
        )
    return {
        "audio_seconds": round(audio_s, 2),
        "appends_per_run": _receive_path(one),
        "frames_played_per_run": _playback_path(one),
        "stages": stages,
        "paths": paths,
    }


def iter_markdown(result: dict[str, Any]) -> Iterator[str]:
    yield "## 2. CPU per conversation"
    yield ""
    yield (
        f"{result['audio_seconds']} s of speech per run, best of several CPU-time runs, in CPU ms per second of "
        "audio (1000 = one core busy). Receive: real libopus packets encrypted like Discord's, through the bot's "
        "VoiceReceiver (decoding at 24 kHz mono), RoomMixer and `input_audio_buffer.append`. Playback: "
        "`response.output_audio.delta` messages through the protocol and the bot's OpusPlaybackSource (20 ms reads "
        "of the answer as it comes, Opus encode at 24 kHz mono), then transport encryption as "
        "`VoiceClient.send_audio_packet` does it. Stages are timed alone; the paths run them together. The 48 kHz "
        "stereo stages (decode, resample, encode) are there for comparison: the bot ran them before issue 16."
    )
    yield ""
    yield "| path | stage | CPU ms / s of audio |"
    yield "| --- | --- | ---: |"
    for row in result["stages"]:
        yield f"| {row['path']} | {row['stage']} | {row['ms_per_s']} |"
    yield ""
    yield (
        "| speakers in the room | receive path ms/s | playback path ms/s | both at once ms/s "
        "| conversations per core (both at once) |"
    )
    yield "| ---: | ---: | ---: | ---: | ---: |"
    for row in result["paths"]:
        yield (
            f"| {row['speakers']} | {row['receive_ms_per_s']} | {row['playback_ms_per_s']} | {row['both_ms_per_s']} "
            f"| {row['conversations_per_core']} |"
        )
    yield ""
    yield (
        "Both at once is the worst case (someone talks over the answer for the whole second); a conversation "
        "takes turns, so the real figure is nearer the larger of the two paths."
    )
