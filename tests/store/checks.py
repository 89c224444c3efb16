"""Checks every store backend's tests make alike."""

from __future__ import annotations

from bot.store import SCHEMA_VERSION, GuildSettings, Privacy, SettingsStore


async def assert_version_3_guild_kept(store: SettingsStore) -> None:
    """A version 3 store's guild 9 (voice verse, silence 800 ms, member 1 opted out of listening), migrated: kept, with
    the later settings at their defaults, migration 5's persona table there, and still writable."""
    assert await store.schema_version() == SCHEMA_VERSION == 5
    kept = await store.get(9)
    assert kept == GuildSettings(voice="verse", silence_ms=800)
    assert (kept.turn_detection, kept.eagerness) == ("server_vad", "auto")
    assert await store.personas(9) == {}  # and migration 5's persona table exists
    assert await store.opted_out(9) == {1: Privacy(no_listen=True)}
    assert (await store.update(9, {"turn_detection": "semantic_vad"})).turn_detection == "semantic_vad"
