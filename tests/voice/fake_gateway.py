"""A Discord voice server on loopback, so the real discord.py voice client connects to it in tests.

- :class:`FakeVoiceServer`: the voice gateway (a real ``websockets`` server: HELLO, IDENTIFY -> READY, SELECT_PROTOCOL
  -> SESSION_DESCRIPTION, heartbeats acknowledged with ``seq_ack``, SPEAKING, CLIENT_DISCONNECT) and the media
  server (a real UDP endpoint: IP discovery, then voice packets both ways).
- With ``dave_protocol_version=1`` it also plays the voice server's DAVE role: the MLS external sender and delivery
  service of :class:`~tests.voice.dave_group.DaveDeliveryService`, for the bot (over the WebSocket, binary opcodes
  framed as Discord frames them) and for the simulated members of :meth:`FakeVoiceServer.add_member`
  (:class:`~tests.voice.dave_member.SimulatedMember`), who hear what the bot sends as the SFU forwards it; the
  messages go through :class:`~tests.voice.dave_relay.DaveRelay`.
- :class:`LoopbackClient`: a real ``discord.Client`` whose main gateway is replaced by :class:`FakeMainGateway`
  (answers our voice-state change with VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE naming the loopback endpoint),
  and whose HTTP client reaches ``wss://127.0.0.1:…`` endpoints over plain ``ws://`` (the only test-only change:
  production code paths are untouched).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Callable
from typing import Any

import aiohttp
import discord
import discord.http
import discord.opus
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bot.voice.rtp import RtpParseError, parse_rtp
from bot.voice.transport_crypto import MODE, RtpSizeDecryptor, TransportDecryptError
from tests.voice.dave_group import OP_INVALID_COMMIT_WELCOME, OP_TRANSITION_READY, DaveDeliveryService, Outgoing
from tests.voice.dave_member import SimulatedMember
from tests.voice.dave_relay import DaveRelay
from tests.voice.guild import LOUNGE_ID
from tests.voice.packets import KEY

SERVER_SSRC_FOR_BOT = 4242
IP_DISCOVERY_BYTES = 74
OP_CLIENTS_CONNECT = 11
OP_CLIENT_DISCONNECT = 13


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: FakeVoiceServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._udp_received(data, addr)


class FakeVoiceServer:
    """One voice server for one bot connection. Start with :meth:`start`, stop with :meth:`close`."""

    def __init__(
        self,
        *,
        secret_key: bytes = KEY,
        modes: tuple[str, ...] = (MODE, "aead_aes256_gcm_rtpsize"),
        heartbeat_interval_ms: int = 200,
        dave_protocol_version: int = 0,
        channel_id: int = LOUNGE_ID,
        transition_timeout_s: float = 3.0,
    ) -> None:
        self.secret_key = secret_key
        self.modes = modes
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.dave_protocol_version = dave_protocol_version
        self.channel_id = channel_id
        self.transition_timeout_s = transition_timeout_s
        #: The call's MLS group, when the call uses DAVE, and the driver that carries its messages.
        self.dave = DaveDeliveryService(channel_id) if dave_protocol_version > 0 else None
        self.dave_relay = DaveRelay(self.dave, self._send_to_bot, transition_timeout_s) if self.dave else None
        self.bot_user_id: int | None = None
        #: A test's hook on the DAVE messages to the bot (e.g. to damage one): returns what is sent instead.
        self.tamper: Callable[[Outgoing], Outgoing] | None = None
        self.bot_ssrc = SERVER_SSRC_FOR_BOT
        self.received_json: list[dict[str, Any]] = []
        self.received_binary: list[bytes] = []
        self.heartbeat_acks: list[dict[str, Any]] = []
        self.voice_datagrams: list[bytes] = []
        self.bot_udp_addr: tuple[str, int] | None = None
        self.session_described = asyncio.Event()
        self._seq = 0
        self._ws: ServerConnection | None = None
        self._server: Server | None = None
        self._udp: _Udp | None = None
        self._bot_decryptor = RtpSizeDecryptor(secret_key)
        self.ws_port = 0
        self.udp_port = 0

    @property
    def endpoint(self) -> str:
        """What VOICE_SERVER_UPDATE carries (host:port, no scheme, as Discord sends it)."""
        return f"127.0.0.1:{self.ws_port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=("127.0.0.1", 0))
        self._udp = protocol
        assert protocol.transport is not None
        self.udp_port = protocol.transport.get_extra_info("sockname")[1]
        self._server = await serve(self._handle, "127.0.0.1", 0)
        self.ws_port = next(iter(self._server.sockets)).getsockname()[1]

    async def close(self) -> None:
        if self.dave_relay is not None:
            self.dave_relay.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()

    # -- voice gateway -----------------------------------------------------------------------------------------------

    async def send(self, op: int, data: dict[str, Any]) -> None:
        """Send a gateway message to the bot (with a sequence number, as Discord's v8 gateway does)."""
        assert self._ws is not None, "no bot connected"
        self._seq += 1
        await self._ws.send(json.dumps({"op": op, "d": data, "seq": self._seq}))

    @property
    def last_seq(self) -> int:
        return self._seq

    async def speaking(self, user_id: int, ssrc: int, speaking: int = 1) -> None:
        await self.send(5, {"user_id": str(user_id), "ssrc": ssrc, "speaking": speaking})

    async def client_disconnect(self, user_id: int) -> None:
        await self.send(OP_CLIENT_DISCONNECT, {"user_id": str(user_id)})

    async def _handle(self, ws: ServerConnection) -> None:
        self._ws = ws
        await ws.send(json.dumps({"op": 8, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}))
        try:
            async for raw in ws:
                if isinstance(raw, bytes):
                    self.received_binary.append(raw)
                    await self._binary_from_bot(raw)
                    continue
                message = json.loads(raw)
                self.received_json.append(message)
                await self._json_from_bot(ws, message["op"], message.get("d") or {})
        except ConnectionClosed:
            pass  # closed while answering (a test closed it, or the bot left): nothing more to say
        finally:
            if self.dave_relay is not None and self.bot_user_id is not None and self._ws is ws:
                await self.dave_relay.leave(self.bot_user_id)

    async def _json_from_bot(self, ws: ServerConnection, op: int, data: dict[str, Any]) -> None:
        if op == 0:  # IDENTIFY
            self.bot_user_id = int(data["user_id"])
            if self.dave_relay is not None:
                self.dave_relay.bot_user_id = self.bot_user_id
            await self.send(
                2,
                {
                    "ssrc": self.bot_ssrc,
                    "ip": "127.0.0.1",
                    "port": self.udp_port,
                    "modes": list(self.modes),
                    "heartbeat_interval": 1,
                },
            )
        elif op == 1:  # SELECT_PROTOCOL
            mode = data["data"]["mode"]
            await self.send(
                4,
                {
                    "mode": mode,
                    "secret_key": list(self.secret_key),
                    "dave_protocol_version": self.dave_protocol_version,
                },
            )
            self.session_described.set()
            if self.members:
                await self.send(OP_CLIENTS_CONNECT, {"user_ids": [str(user) for user in self.members]})
            if self.dave is not None and self.dave_relay is not None and self.bot_user_id is not None:
                await self.dave_relay.event(self.dave.connect, self.bot_user_id)
        elif op == 3:  # HEARTBEAT
            self.heartbeat_acks.append(data)
            await ws.send(json.dumps({"op": 6, "d": {"t": data["t"]}}))
        elif (
            self.dave_relay is not None
            and self.bot_user_id is not None
            and op in (OP_TRANSITION_READY, OP_INVALID_COMMIT_WELCOME)
        ):
            await self.dave_relay.from_bot(Outgoing(self.bot_user_id, op, data))

    async def _binary_from_bot(self, raw: bytes) -> None:
        """DAVE binary opcodes from a client: the opcode byte, then the body."""
        if self.dave_relay is not None and self.bot_user_id is not None and raw:
            await self.dave_relay.from_bot(Outgoing(self.bot_user_id, raw[0], raw[1:]))

    # -- DAVE: the group of the call -----------------------------------------------------------------------------------

    @property
    def members(self) -> dict[int, SimulatedMember]:
        """The other users in the call (DAVE calls only), by user id."""
        return self.dave_relay.members if self.dave_relay is not None else {}

    async def add_member(self, user_id: int, ssrc: int, *, latency_s: float = 0.0) -> SimulatedMember:
        """Another user joins the call: the bot hears of it (CLIENTS_CONNECT) and the member joins the MLS group.

        ``latency_s`` delays what the member sends to the server (a slow network, or a slow client).
        """
        assert self.dave_relay is not None, "simulated members need a DAVE call"
        member = SimulatedMember(user_id, self.channel_id, ssrc, self.dave_protocol_version)
        member.latency_s = latency_s
        if self._ws is not None and self.bot_user_id is not None:
            await self.send(OP_CLIENTS_CONNECT, {"user_ids": [str(user_id)]})
        await self.dave_relay.join(member)
        return member

    async def remove_member(self, user_id: int) -> None:
        """The user leaves the call: CLIENT_DISCONNECT to the bot, and out of the MLS group."""
        assert self.dave_relay is not None
        if self._ws is not None and self.bot_user_id is not None:
            await self.client_disconnect(user_id)
        await self.dave_relay.leave(user_id)

    @property
    def dave_settled(self) -> bool:
        """No proposal, commit or transition in flight, and nothing left to deliver."""
        return self.dave_relay is not None and self.dave_relay.settled

    async def _send_to_bot(self, message: Outgoing) -> None:
        """JSON as every gateway message; binary as ``uint16 sequence, uint8 opcode, body``. Lost if the bot is gone."""
        if self._ws is None:
            return
        if self.tamper is not None:
            message = self.tamper(message)
        with contextlib.suppress(ConnectionClosed):
            if isinstance(message.data, bytes):
                self._seq += 1
                await self._ws.send(struct.pack(">HB", self._seq & 0xFFFF, message.op) + message.data)
            else:
                await self.send(message.op, message.data)

    def ops_received(self, op: int) -> list[dict[str, Any]]:
        return [m for m in self.received_json if m["op"] == op]

    # -- media server -------------------------------------------------------------------------------------------------

    def _udp_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) == IP_DISCOVERY_BYTES and data[:2] == b"\x00\x01":
            self.bot_udp_addr = addr
            reply = bytearray(IP_DISCOVERY_BYTES)
            struct.pack_into(">HHI", reply, 0, 2, 70, struct.unpack_from(">I", data, 4)[0])
            host = addr[0].encode("ascii")
            reply[8 : 8 + len(host)] = host
            struct.pack_into(">H", reply, IP_DISCOVERY_BYTES - 2, addr[1])
            self._sendto(bytes(reply))
            return
        self.voice_datagrams.append(data)
        if self.members and self.bot_user_id is not None:
            self._forward_to_members(data)

    def _forward_to_members(self, datagram: bytes) -> None:
        """What the SFU does with the bot's voice: strip transport encryption, pass the frame to everyone else."""
        try:
            packet = parse_rtp(datagram)
            frame = self._bot_decryptor.decrypt(packet)
        except (RtpParseError, TransportDecryptError):
            return
        if packet.ssrc != self.bot_ssrc or self.bot_user_id is None:
            return
        for member in self.members.values():
            member.hear(self.bot_user_id, packet.timestamp, frame)

    def _sendto(self, data: bytes) -> None:
        assert self._udp is not None and self._udp.transport is not None and self.bot_udp_addr is not None
        self._udp.transport.sendto(data, self.bot_udp_addr)

    def send_voice(self, datagram: bytes) -> None:
        """Send a voice datagram (from some user) to the bot."""
        self._sendto(datagram)

    def decode_bot_audio(self) -> tuple[bytes, int]:
        """Decrypt and Opus-decode what the bot sent (as Discord would): (48 kHz stereo pcm16, packets)."""
        decryptor = RtpSizeDecryptor(self.secret_key)
        decoder = discord.opus.Decoder()  # type: ignore[no-untyped-call]
        packets = sorted((parse_rtp(d) for d in self.voice_datagrams), key=lambda p: p.timestamp)
        pcm = b"".join(decoder.decode(decryptor.decrypt(p), fec=False) for p in packets if p.ssrc == self.bot_ssrc)
        return pcm, len(packets)


class FakeMainGateway:
    """Stands in for the main gateway's voice-state request: answers as Discord does, with the two voice events."""

    def __init__(self, client: discord.Client, server: FakeVoiceServer) -> None:
        self.client = client
        self.server = server
        self.requests: list[tuple[int, int | None]] = []

    async def voice_state(
        self, guild_id: int, channel_id: int | None, self_mute: bool = False, self_deaf: bool = False
    ) -> None:
        self.requests.append((int(guild_id), None if channel_id is None else int(channel_id)))
        asyncio.get_running_loop().create_task(self._answer(int(guild_id), channel_id))

    async def _answer(self, guild_id: int, channel_id: int | None) -> None:
        # Answer after a round trip, as Discord does: discord.py waits for these events on an asyncio.Event it sets
        # and clears at once, so events dispatched in the same loop iteration as the request would be missed.
        await asyncio.sleep(0.02)
        voice = self.client._connection._get_voice_client(guild_id)
        if voice is None:
            return
        assert self.client.user is not None
        state = {
            "guild_id": str(guild_id),
            "channel_id": None if channel_id is None else str(channel_id),
            "user_id": str(self.client.user.id),
            "session_id": "voice-session-1",
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": False,
            "suppress": False,
        }
        await voice.on_voice_state_update(state)  # type: ignore[arg-type]
        await asyncio.sleep(0.02)
        if channel_id is not None:
            server = {"token": "voice-token", "guild_id": str(guild_id), "endpoint": self.server.endpoint}
            await voice.on_voice_server_update(server)  # type: ignore[arg-type]


class LoopbackHTTPClient(discord.http.HTTPClient):
    """discord.py's HTTP client, but a ``wss://127.0.0.1`` websocket is opened as ``ws://`` (tests have no TLS)."""

    _loopback_session: aiohttp.ClientSession | None = None

    async def ws_connect(self, url: str, *, compress: int = 0) -> aiohttp.ClientWebSocketResponse:
        if not url.startswith("wss://127.0.0.1:"):
            raise AssertionError(f"tests connect only to loopback, not {url}")
        if self._loopback_session is None:
            self._loopback_session = aiohttp.ClientSession()
        return await self._loopback_session.ws_connect(
            "ws://" + url.removeprefix("wss://"), autoclose=False, max_msg_size=0, compress=compress
        )

    async def close(self) -> None:
        if self._loopback_session is not None:
            await self._loopback_session.close()
        await super().close()


class LoopbackClient(discord.Client):
    """A real client whose main gateway is :class:`FakeMainGateway` and whose HTTP reaches loopback only."""

    def __init__(self, server: FakeVoiceServer) -> None:
        super().__init__(intents=discord.Intents(guilds=True, voice_states=True))
        self.http = LoopbackHTTPClient(self.loop)
        self._connection.http = self.http
        self.main_gateway = FakeMainGateway(self, server)

    def _get_websocket(self, guild_id: int | None = None, *, shard_id: int | None = None) -> Any:
        return self.main_gateway


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` on the event loop until it holds (fails the test after ``timeout_s``)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
