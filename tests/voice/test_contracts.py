"""The voice part fits the protocols the per-guild session is written against (checked by mypy and at run time)."""

from __future__ import annotations

from bot.session.protocols import Playback, VoiceLink
from bot.voice.client import ReceivingVoiceClient
from bot.voice.playback import PlaybackSource


def as_voice_link(client: ReceivingVoiceClient) -> VoiceLink:
    return client  # mypy checks the structural match


def as_playback(source: PlaybackSource) -> Playback:
    return source


def test_playback_source_is_a_session_playback() -> None:
    source = PlaybackSource()
    playback = as_playback(source)
    playback.feed("item", bytes(960))
    assert playback.clear() == {"item": 0.0}  # cut before any of it was played
    assert playback.is_playing is False


def test_voice_client_has_every_voice_link_member() -> None:
    for name in ("channel_id", "set_room_audio_handler", "speakers_between", "member_names", "humans_present"):
        assert hasattr(ReceivingVoiceClient, name), name
    for name in ("move_to", "disconnect"):
        assert callable(getattr(ReceivingVoiceClient, name))
