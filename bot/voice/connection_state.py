"""discord.py's voice connection state, with a socket reader that survives a voice reconnect while receiving.

discord.py's ``SocketReader`` thread waits in ``select()`` on the voice UDP socket for up to 30 s at a time. While
nobody listens it sleeps elsewhere, but a receiving client keeps a listener registered, so the thread is always in
that ``select()``. When the voice websocket drops, discord.py closes the socket and makes a new one; closing a socket
does not wake a ``select()`` in another thread, so the reader stays on the dead socket and misses the new one's IP
discovery answer, which times out (10 s) again and again. Here every disconnect first pauses the reader and shuts the
socket down, which does wake the ``select()``; the reader then waits until discord.py resumes it on the new socket.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from discord.voice_state import VoiceConnectionState

from bot.voice.udp_send import send_datagram


class ReceivingConnectionState(VoiceConnectionState):
    """The connection state ``ReceivingVoiceClient.create_connection_state`` returns."""

    async def disconnect(self, **kwargs: Any) -> None:
        self._release_socket_reader()
        await super().disconnect(**kwargs)

    async def soft_disconnect(self, **kwargs: Any) -> None:
        self._release_socket_reader()
        await super().soft_disconnect(**kwargs)

    def send_packet(self, packet: bytes | bytearray) -> None:
        """Send one RTP packet (discord.py's ``send_audio_packet`` calls this; it drops a packet on ``OSError``)."""
        send_datagram(self.socket, packet)

    def _release_socket_reader(self) -> None:
        self._socket_reader.pause()
        sock = self.socket
        if sock is not None:
            with contextlib.suppress(OSError):  # not connected yet, or already closed
                sock.shutdown(socket.SHUT_RDWR)
