"""A direct ``ctypes`` binding to libopus, for the bot's own encoder and decoder.

discord.py's ``discord.opus`` wraps the same library but fixes the encoder complexity at libopus's default and
decodes through a Python list of samples per frame. The bot's voice path does both for every frame of every guild,
so it binds the few functions it needs itself (``bench/FINDINGS.md`` has the before and after). The library is found
the way discord.py finds it (``ctypes.util.find_library("opus")``). :func:`bind_libopus` returns ``None`` when that
fails, and callers then fall back to discord.py's classes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

OPUS_OK = 0
#: The longest Opus packet is 120 ms: 5,760 samples per channel at 48 kHz.
MAX_FRAME_SAMPLES = 5760
#: The largest Opus packet libopus recommends allocating for.
MAX_PACKET_BYTES = 4000


class OpusCodecError(RuntimeError):
    """libopus refused a frame, a packet or a setting (its error code is in the message)."""


@functools.cache
def bind_libopus() -> ctypes.CDLL | None:
    """libopus with the encoder and decoder functions typed, or ``None`` if it cannot be found or loaded."""
    return _load(ctypes.CDLL)


@functools.cache
def bind_libopus_holding_gil() -> ctypes.CDLL | None:
    """libopus typed as by :func:`bind_libopus`, but loaded with :class:`ctypes.PyDLL`: its calls keep the GIL.

    For the answer encoder, which runs on the one sender thread: a 20 ms frame encodes in tens of microseconds,
    and a ``CDLL`` call gives the GIL away for that long; under load another thread takes it, and the sender then
    waits up to a switch interval (5 ms) to get it back, per frame per connection (``bench/FINDINGS.md``, issue 16).
    """
    return _load(ctypes.PyDLL)


def _load(loader: type[ctypes.CDLL]) -> ctypes.CDLL | None:
    name = ctypes.util.find_library("opus")
    if name is None:
        return None
    try:
        lib = loader(name)
    except OSError:
        return None
    return _typed(lib)


def _typed(lib: ctypes.CDLL) -> ctypes.CDLL:
    state, size, char_p, err_p = ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)
    lib.opus_encoder_create.argtypes = [size, ctypes.c_int, ctypes.c_int, err_p]
    lib.opus_encoder_create.restype = state
    lib.opus_encoder_ctl.argtypes = [state, ctypes.c_int, size]
    lib.opus_encoder_ctl.restype = ctypes.c_int
    lib.opus_encode.argtypes = [state, char_p, ctypes.c_int, char_p, size]
    lib.opus_encode.restype = size
    lib.opus_encoder_destroy.argtypes = [state]
    lib.opus_encoder_destroy.restype = None
    lib.opus_decoder_create.argtypes = [size, ctypes.c_int, err_p]
    lib.opus_decoder_create.restype = state
    lib.opus_decode.argtypes = [state, char_p, size, char_p, ctypes.c_int, ctypes.c_int]
    lib.opus_decode.restype = ctypes.c_int
    lib.opus_decoder_destroy.argtypes = [state]
    lib.opus_decoder_destroy.restype = None
    lib.opus_packet_get_nb_samples.argtypes = [char_p, size, size]
    lib.opus_packet_get_nb_samples.restype = ctypes.c_int
    return lib
