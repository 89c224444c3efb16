"""The DAVE step on its own: the real ``davey`` session where no group is needed (not ready, passthrough, failures),
and a small stand-in session for the branches of a ready one.

Decryption in a real MLS group, with the loopback gateway as the external sender, is in ``test_dave_loopback.py``.
"""

from __future__ import annotations

import davey
import pytest

from bot.voice.dave import DAVE_MAGIC_MARKER, OPUS_SILENCE, DaveDecryptStep, DaveSessionLike, is_dave_frame
from bot.voice.metrics import VoiceMetrics

OPUS = b"\xfc\x10\x20\x30opus"
E2EE = b"\x01\x02ciphertext\x00\x00supplemental" + DAVE_MAGIC_MARKER


class ReadyRealSession:
    """A real ``davey.DaveSession`` reported as ready: its decrypt is the real one (no group: it always fails)."""

    def __init__(self) -> None:
        self.inner = davey.DaveSession(1, 111, 222)

    @property
    def ready(self) -> bool:
        return True

    def decrypt(self, user_id: int, media_type: davey.MediaType, packet: bytes) -> bytes:
        return self.inner.decrypt(user_id, media_type, packet)

    def can_passthrough(self, user_id: int) -> bool:
        return self.inner.can_passthrough(user_id)


class KeyedSession:
    """Stand-in for a session in an established group: strips the DAVE trailer for known users."""

    ready = True

    def __init__(self, users: set[int]) -> None:
        self.users = users
        self.calls: list[int] = []

    def decrypt(self, user_id: int, media_type: davey.MediaType, packet: bytes) -> bytes:
        assert media_type is davey.MediaType.audio
        self.calls.append(user_id)
        if user_id not in self.users:
            raise ValueError("Failed to decrypt: NoDecryptorForUser")
        return OPUS if is_dave_frame(packet) else packet

    def can_passthrough(self, user_id: int) -> bool:
        return False


def step(session: DaveSessionLike | None, version: int) -> tuple[DaveDecryptStep, VoiceMetrics]:
    metrics = VoiceMetrics()
    return DaveDecryptStep(lambda: (session, version), metrics), metrics


def test_no_e2ee_passes_frames_through() -> None:
    dave, metrics = step(None, 0)
    assert dave.process(5, OPUS) == OPUS
    assert dave.process(None, OPUS) == OPUS
    assert metrics.snapshot() == {}


def test_silence_always_passes_even_when_decrypt_would_fail() -> None:
    dave, metrics = step(ReadyRealSession(), 1)
    assert dave.process(5, OPUS_SILENCE) == OPUS_SILENCE
    assert metrics.snapshot() == {}


def test_transition_session_not_ready_passes_plain_and_drops_e2ee() -> None:
    session = davey.DaveSession(1, 111, 222)
    assert not session.ready
    dave, metrics = step(session, 1)
    assert dave.process(5, OPUS) == OPUS
    assert dave.process(5, E2EE) is None
    assert metrics.snapshot() == {"dave_passthrough": 1, "dave_not_ready": 1}


def test_downgrade_to_version_zero_drops_leftover_e2ee_frames() -> None:
    dave, metrics = step(davey.DaveSession(1, 111, 222), 0)
    assert dave.process(5, OPUS) == OPUS
    assert dave.process(5, E2EE) is None
    assert metrics.get("dave_not_ready") == 1


def test_real_davey_failure_is_counted_not_raised() -> None:
    dave, metrics = step(ReadyRealSession(), 1)
    assert dave.process(5, E2EE) is None
    assert dave.process(5, OPUS) is None
    assert metrics.snapshot() == {"dave_failed": 1, "dave_unencrypted": 1}


def test_unknown_user_cannot_be_decrypted() -> None:
    session = KeyedSession({5})
    dave, metrics = step(session, 1)
    assert dave.process(None, E2EE) is None
    assert session.calls == []
    assert metrics.get("dave_unknown_user") == 1


def test_ready_session_decrypts_known_user_and_counts_unknown() -> None:
    session = KeyedSession({5})
    dave, metrics = step(session, 1)
    assert dave.process(5, E2EE) == OPUS
    assert dave.process(6, E2EE) is None
    assert session.calls == [5, 6]
    assert metrics.snapshot() == {"dave_decrypted": 1, "dave_failed": 1}


def test_session_is_read_per_frame() -> None:
    current: list[tuple[DaveSessionLike | None, int]] = [(None, 0)]
    metrics = VoiceMetrics()
    dave = DaveDecryptStep(lambda: current[0], metrics)
    assert dave.process(5, OPUS) == OPUS
    current[0] = (KeyedSession({5}), 1)
    assert dave.process(5, E2EE) == OPUS


@pytest.mark.parametrize(("frame", "expected"), [(E2EE, True), (OPUS, False), (DAVE_MAGIC_MARKER, False)])
def test_magic_marker_detection(frame: bytes, expected: bool) -> None:
    assert is_dave_frame(frame) is expected
