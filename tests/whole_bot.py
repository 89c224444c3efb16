"""A whole bot in a room, for end-to-end tests: the real ``VoiceBot`` with its cogs and session factory, talking to
the loopback voice gateway (real WebSocket, UDP, libopus, crypto) and the local Realtime server (real WebSocket,
schema-checked events). Only the main Discord gateway and its HTTP API are stand-ins: voice-state requests are
answered by :class:`~tests.voice.fake_gateway.FakeMainGateway`, and posted messages are recorded.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from discord import app_commands

from bot.app import VoiceBot
from bot.config import load_config
from bot.persona.library import PersonaLibrary
from bot.realtime.retry import RetryPolicy
from bot.session.guild_session import GuildSession
from bot.session.wiring import GuildSessionFactory
from bot.store.sqlite import SqliteStore
from cogs.persona import PersonaCog
from cogs.persona_admin import PersonaAdminCog
from cogs.voice import VoiceCog
from cogs.voice_admin import VoiceAdminCog
from tests.discord_world import FakeInteraction, World, make_world
from tests.realtime.server import RealtimeTestServer, Script
from tests.voice.fake_gateway import FakeMainGateway, FakeVoiceServer, LoopbackHTTPClient, wait_until
from tests.voice.packets import Speaker

GUILD_ID = 1000
LOUNGE_ID = 10
ALICE, BOB, CAROL = 5, 6, 7
FRAME_S = 0.02


class RecordingHTTPClient(LoopbackHTTPClient):
    """Loopback WebSockets, and channel messages recorded instead of sent to Discord."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.posted: list[tuple[int, str]] = []
        self.voice_state_edits: list[tuple[int, dict[str, Any]]] = []
        self._ids = itertools.count(1)

    async def edit_my_voice_state(self, guild_id: Any, payload: dict[str, Any]) -> None:
        """Stage requests (become a speaker, ask to speak) are recorded; Discord answers them with 204."""
        self.voice_state_edits.append((int(guild_id), dict(payload)))

    async def send_message(self, channel_id: Any, *, params: Any) -> Any:
        content = str(params.payload.get("content", ""))
        self.posted.append((int(channel_id), content))
        author = {"id": "99", "username": "voicebot", "discriminator": "0", "avatar": None, "bot": True}
        return {
            "id": str(next(self._ids)),
            "channel_id": str(channel_id),
            "content": content,
            "author": author,
            "attachments": [],
            "embeds": [],
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "mention_everyone": False,
            "tts": False,
            "timestamp": "2026-11-24T00:00:00+00:00",
            "edited_timestamp": None,
            "type": 0,
            "flags": 0,
        }


class LoopbackVoiceBot(VoiceBot):
    """The production bot class, with its main gateway and HTTP on loopback."""

    def __init__(self, voice_server: FakeVoiceServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.http = RecordingHTTPClient(self.loop)
        self._connection.http = self.http
        self.main_gateway = FakeMainGateway(self, voice_server)

    def _get_websocket(self, guild_id: int | None = None, *, shard_id: int | None = None) -> Any:
        return self.main_gateway

    @property
    def posted(self) -> list[tuple[int, str]]:
        return self.recording_http.posted

    @property
    def recording_http(self) -> RecordingHTTPClient:
        http = self.http
        assert isinstance(http, RecordingHTTPClient)
        return http


@dataclass
class Room:
    bot: LoopbackVoiceBot
    world: World
    voice_server: FakeVoiceServer
    realtime: RealtimeTestServer
    speakers: dict[int, Speaker] = field(default_factory=dict)

    def interaction(self, user_id: int) -> FakeInteraction:
        return FakeInteraction(
            client=self.bot, guild=self.world.guild, user=self.world.member(user_id), channel=self.world.text_channel()
        )

    def cog(self, name: str) -> Any:
        found = self.bot.get_cog(name)
        assert found is not None
        return found

    async def command(self, cog_name: str, command: str, user_id: int, **options: Any) -> FakeInteraction:
        """Run a slash command as ``user_id``; errors go to the cog's error handler, as discord.py's tree does."""
        fake = self.interaction(user_id)
        cog = self.cog(cog_name)
        interaction = fake.as_interaction()
        slash: app_commands.Command[Any, ..., Any] = getattr(cog, command)
        fake.command = slash
        try:
            if not await slash._check_can_run(interaction):  # the checks discord.py's tree runs first
                raise app_commands.CheckFailure(f"the checks of /{slash.qualified_name} failed")
            await slash.callback(cog, interaction, **options)
        except app_commands.AppCommandError as error:
            await cog.cog_app_command_error(interaction, error)
        return fake

    async def join(self, user_id: int = ALICE, **options: Any) -> FakeInteraction:
        return await self.command("VoiceCog", "join", user_id, **options)

    @property
    def session(self) -> GuildSession:
        session = self.bot.sessions.get(GUILD_ID)
        assert isinstance(session, GuildSession)
        return session

    async def speak(self, user_id: int, pcm16_48k_stereo: bytes, *, silence_frames: int = 5) -> None:
        """``user_id`` talks: real Opus, encrypted as Discord does, one packet per 20 ms (then Opus silence)."""
        speaker = self.speakers.get(user_id)
        if speaker is None:
            speaker = self.speakers[user_id] = Speaker(ssrc=4000 + user_id)
            await self.voice_server.speaking(user_id, speaker.ssrc)
            await asyncio.sleep(0.05)  # SPEAKING reaches the bot before the first packet, as on Discord
        start = asyncio.get_running_loop().time()
        for n, datagram in enumerate(speaker.packets(pcm16_48k_stereo, silence_tail=silence_frames)):
            self.voice_server.send_voice(datagram)
            await asyncio.sleep(max(0.0, start + (n + 1) * FRAME_S - asyncio.get_running_loop().time()))

    def gateway_voice_state(self, user_id: int, channel_id: int | None) -> None:
        """A VOICE_STATE_UPDATE from the main gateway, through discord.py's own parser (as Discord sends it)."""
        flags = {"deaf": False, "mute": False, "self_deaf": False, "self_mute": False, "suppress": False}
        data: Any = {
            "guild_id": str(GUILD_ID),
            "channel_id": None if channel_id is None else str(channel_id),
            "user_id": str(user_id),
            "session_id": f"s{user_id}",
            "member": self.world.members[user_id],  # Discord sends the member with guild voice states
            **flags,
        }
        self.world.state.parse_voice_state_update(data)

    def posts(self) -> list[str]:
        return [content for _channel, content in self.bot.posted]


@asynccontextmanager
async def room(
    tmp_path: Path,
    script: Script | list[Script],
    *,
    settings: dict[str, Any] | None = None,
    dialect: str = "ga",
    **realtime_options: Any,
) -> AsyncIterator[Room]:
    """A running bot in guild 1000 (alice and carol in the Lounge), with ``script`` as the Realtime model."""
    voice_server = FakeVoiceServer()
    await voice_server.start()
    try:
        async with RealtimeTestServer(script, dialect=dialect, **realtime_options) as realtime:
            env = {
                "DISCORD_TOKEN": "discord-token-abcdef",
                "REALTIME_PROVIDER": "custom",
                "REALTIME_URL": realtime.url,
                "REALTIME_API_KEY": "test-key",
                "REALTIME_DIALECT": dialect,
                "DATA_DIR": str(tmp_path),
                "MANAGER_ROLE": "DJ",
            }
            config = load_config(env, env_file=None)
            store = await SqliteStore.in_data_dir(tmp_path)
            if settings:
                await store.update(GUILD_ID, settings)
            personas = PersonaLibrary(tmp_path / "personas")
            factory = GuildSessionFactory(
                config, store, personas, retry_policy=RetryPolicy(base_delay_s=0.05, max_delay_s=0.2)
            )
            bot = LoopbackVoiceBot(voice_server, config=config, store=store, personas=personas, session_factory=factory)
            async with bot:
                for cog in (VoiceCog(bot), VoiceAdminCog(bot), PersonaCog(bot), PersonaAdminCog(bot)):
                    await bot.add_cog(cog)
                world = make_world(bot, GUILD_ID)
                try:
                    yield Room(bot, world, voice_server, realtime)
                except BaseException:
                    if realtime.script_errors:  # the model script's failure explains the test's
                        raise realtime.script_errors[0] from None
                    raise
                finally:
                    await bot.close()
            if realtime.script_errors:
                raise realtime.script_errors[0]
            assert realtime.schema_problems == []
    finally:
        await voice_server.close()


def tone_48k_stereo(frequency_hz: float, seconds: float, amplitude: float = 8000.0) -> bytes:
    t = np.arange(int(seconds * 48_000)) / 48_000
    mono = amplitude * np.sin(2 * np.pi * frequency_hz * t)
    return np.clip(np.rint(np.repeat(mono, 2)), -32768, 32767).astype("<i2").tobytes()


def voiced_ms(pcm16_48k_stereo: bytes, threshold: float = 500.0) -> float:
    """Milliseconds of 20 ms frames louder than ``threshold`` (RMS in pcm16 units)."""
    samples = np.frombuffer(pcm16_48k_stereo[: len(pcm16_48k_stereo) // 3840 * 3840], "<i2").astype(np.float64)
    frames = samples.reshape(-1, 1920)
    return float(np.count_nonzero(np.sqrt(np.mean(frames**2, axis=1)) > threshold) * 20)


async def eventually(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """:func:`wait_until` with room for a whole spoken turn."""
    await wait_until(predicate, timeout_s)
