"""The DAVE step on its own, with real ``davey`` sessions: without a group (not ready, passthrough, failures) and
in a real MLS group formed in-process by the test gateway's group logic.

Decryption in a real MLS group, with the loopback gateway as the external sender, is in ``test_dave_loopback.py``.
"""

from __future__ import annotations

import davey
import pytest

from bot.voice.dave import DAVE_MAGIC_MARKER, OPUS_SILENCE, DaveDecryptStep, DaveSessionLike, is_dave_frame
from bot.voice.metrics import VoiceMetrics
from tests.voice.dave_member import InProcessCall

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


def real_group() -> tuple[davey.DaveSession, davey.DaveSession]:
    """(alice, listener): two members of a real MLS group formed through the test gateway's group logic."""
    call = InProcessCall(channel_id=222)
    alice = call.join(5)
    listener = call.join(111)
    call.assert_consistent()
    return alice.session, listener.session


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
    alice, listener = real_group()
    dave, metrics = step(listener, 1)
    assert dave.process(None, alice.encrypt_opus(OPUS)) is None  # davey is not even asked without a user
    assert metrics.snapshot() == {"dave_unknown_user": 1}


def test_ready_session_decrypts_a_member_and_counts_a_stranger() -> None:
    alice, listener = real_group()
    dave, metrics = step(listener, 1)
    frame = alice.encrypt_opus(OPUS)
    assert is_dave_frame(frame)
    assert dave.process(5, frame) == OPUS
    assert dave.process(6, alice.encrypt_opus(OPUS)) is None  # no key for user 6 in this group
    assert metrics.snapshot() == {"dave_decrypted": 1, "dave_failed": 1}


def test_session_is_read_per_frame() -> None:
    alice, listener = real_group()
    current: list[tuple[DaveSessionLike | None, int]] = [(None, 0)]
    metrics = VoiceMetrics()
    dave = DaveDecryptStep(lambda: current[0], metrics)
    assert dave.process(5, OPUS) == OPUS
    current[0] = (listener, 1)
    assert dave.process(5, alice.encrypt_opus(OPUS)) == OPUS
    assert dave.process(5, OPUS) is None  # in an established group, a plain frame is refused


@pytest.mark.parametrize(("frame", "expected"), [(E2EE, True), (OPUS, False), (DAVE_MAGIC_MARKER, False)])
def test_magic_marker_detection(frame: bytes, expected: bool) -> None:
    assert is_dave_frame(frame) is expected
