"""Send one datagram on a connected UDP socket without letting go of the GIL.

Why: Python's ``socket.send``/``sendall`` release the GIL around the system call. The call itself takes a few
microseconds, but when another thread is waiting for the GIL (the event loop, discord.py's socket readers) it takes
the GIL in that moment, and the sender gets it back only when that thread releases it or the switch interval (5 ms)
runs out. The one :class:`~bot.voice.sender.VoiceSender` thread sends a packet per connection per 20 ms tick, so
each tick gave the GIL away once per packet: under load its ticks ran 20-50 ms late and answers had gaps
(``bench/FINDINGS.md``, issue 16, measured with ``bench/wire_profile.py``). A UDP send on a non-blocking socket
never waits, so holding the GIL through it costs the other threads nothing.

:func:`send_datagram` calls libc's ``send(2)`` through :class:`ctypes.PyDLL`, whose calls keep the GIL. Where libc
cannot be bound that way it falls back to ``socket.send``. Either way a failure raises :class:`OSError` as
``socket.send`` does (``BlockingIOError`` when the socket buffer is full, ``EBADF`` on a closed socket).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import socket
from collections.abc import Callable

_log = logging.getLogger(__name__)

_LibcSend = Callable[[int, bytes, int, int], int]


@functools.cache
def bind_libc_send() -> _LibcSend | None:
    """libc's ``send(fd, buf, len, flags)``, called with the GIL held, or ``None`` if it cannot be bound."""
    try:
        libc = ctypes.PyDLL(None, use_errno=True)
        send = libc.send
    except (OSError, AttributeError):
        _log.warning("libc send() could not be bound; voice packets are sent with socket.send")
        return None
    send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    send.restype = ctypes.c_ssize_t
    bound: _LibcSend = send
    return bound


def send_datagram(sock: socket.socket, packet: bytes | bytearray) -> None:
    """Send ``packet`` as one datagram on the connected, non-blocking UDP socket ``sock``, holding the GIL.

    ``packet`` may be a ``bytearray`` (discord.py builds its RTP packets as one).

    Raises:
        OSError: the send failed (full buffer, closed or unconnected socket), as ``socket.send`` raises it.
    """
    send = bind_libc_send()
    if send is None:
        sock.send(packet)
        return
    fd = sock.fileno()
    if fd < 0:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    data = packet if isinstance(packet, bytes) else bytes(packet)
    if send(fd, data, len(data), 0) < 0:
        code = ctypes.get_errno()
        if code in (errno.EAGAIN, errno.EWOULDBLOCK):
            raise BlockingIOError(code, os.strerror(code))
        raise OSError(code, os.strerror(code))
