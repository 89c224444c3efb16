"""The bot's share of an answer's start: from the first audio delta handed to playback to the first audible packet
handed to the voice connection, with the lead silence added in front of the answer (before issue 16) and with the
lead-in started when the answer is asked for (now).

A one-off measurement for ``bench/FINDINGS.md`` (section 5); run it with ``python -m bench.lead_in``. Not part of
``python -m bench``. The bot's own :class:`~bot.voice.playback.OpusPlaybackSource` (default settings: 60 ms
start-up buffer, 200 ms lead silence, 24 kHz mono encoding) plays on the bot's own threaded
:class:`~bot.voice.sender.VoiceSender`; a stand-in connection timestamps each packet instead of encrypting and
sending it (those two steps are the same in every variant). The model "thinks" for ``think_ms`` after the answer is
asked for, then streams the answer ahead of real time (100 ms deltas every 50 ms), as the Realtime API does.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from bench.timing import percentile
from bot.voice.playback import OPUS_SILENCE_FRAME, OpusPlaybackSource
from bot.voice.sender import VoiceSender

_DELTA_BYTES = 4800  # 100 ms of 24 kHz mono
_ANSWER = np.rint(8000 * np.sin(2 * np.pi * 220 * np.arange(24_000) / 24_000)).astype("<i2").tobytes()


class _Connection:
    """Stands in for the voice connection: the instant of the first audible packet."""

    def __init__(self) -> None:
        self.first_audio_s: float | None = None
        self.audio = threading.Event()

    def is_connected(self) -> bool:
        return True

    def send_audio_packet(self, data: bytes, *, encode: bool = True) -> None:
        if data != OPUS_SILENCE_FRAME and self.first_audio_s is None:
            self.first_audio_s = time.monotonic()
            self.audio.set()

    def set_speaking_threadsafe(self, speaking: bool) -> None:
        pass


def one_answer(sender: VoiceSender, *, lead_in: bool, think_ms: float) -> float:
    """Milliseconds from the first delta fed to the first audible packet sent."""
    connection, source = _Connection(), OpusPlaybackSource()
    sender.add(connection, source)
    try:
        if lead_in:
            source.start_lead_in()  # what TurnTaking does when it asks for the answer
        time.sleep(think_ms / 1000)
        first_delta_s = time.monotonic()
        for start in range(0, len(_ANSWER), _DELTA_BYTES):
            source.feed("answer", _ANSWER[start : start + _DELTA_BYTES])
            if connection.audio.is_set() and start >= 3 * _DELTA_BYTES:
                break
            time.sleep(0.05)
        connection.audio.wait(2.0)
        assert connection.first_audio_s is not None
        return (connection.first_audio_s - first_delta_s) * 1000
    finally:
        sender.remove(connection)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=25)
    answers = parser.parse_args().answers
    sender = VoiceSender()
    print("| lead silence | model thinks | answers | first delta -> first audible packet, p50 / p90 / max |")
    print("| --- | --- | --- | --- |")
    try:
        for lead_in, think_ms, name in (
            (False, 300.0, "added in front of the answer (before)"),
            (True, 300.0, "started when the answer is asked for (now)"),
            (True, 100.0, "started when the answer is asked for (now)"),
        ):
            times = [one_answer(sender, lead_in=lead_in, think_ms=think_ms) for _ in range(answers)]
            figures = " / ".join(f"{percentile(times, q):.1f}" for q in (0.5, 0.9)) + f" / {max(times):.1f} ms"
            print(f"| {name} | {think_ms:.0f} ms | {answers} | {figures} |")
    finally:
        sender.close()


if __name__ == "__main__":
    main()
