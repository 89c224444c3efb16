"""The store's behaviour, the same on both backends (a real SQLite file, a real PostgreSQL server)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.store import (
    SCHEMA_VERSION,
    GuildSettings,
    Privacy,
    SettingsStore,
    StoreError,
    TalkTime,
    Usage,
    validate_setting,
)
from bot.store.sqlite import SqliteStore
from tests.store.conftest import StoreLocation


async def test_defaults_when_nothing_is_stored(store: SettingsStore) -> None:
    assert await store.get(1) == GuildSettings()
    assert await store.schema_version() == SCHEMA_VERSION


async def test_settings_survive_a_restart(location: StoreLocation) -> None:
    first = await location.open()
    saved = await first.update(42, {"voice": "cedar", "interruptions": False, "silence_ms": 800, "mode": "name"})
    await first.close()
    second = await location.open()
    assert await second.get(42) == saved
    assert saved.voice == "cedar" and saved.interruptions is False and saved.silence_ms == 800
    assert await second.get(43) == GuildSettings()  # guilds are independent
    await second.close()


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("vad_threshold", 1.5, "between 0.0 and 1.0"),
        ("silence_ms", 20, "between 100 and 3000 ms"),
        ("mode", "loud", "listening mode must be one of"),
        ("interruptions", "yes", "must be on or off"),
        ("colour", "red", "unknown setting"),
        ("voice", "", "short text"),
        ("transcript_channel_id", -1, "channel id"),
    ],
)
async def test_bad_values_are_refused_and_nothing_changes(
    store: SettingsStore, name: str, value: object, reason: str
) -> None:
    await store.update(7, {"voice": "alloy"})
    with pytest.raises(StoreError, match=reason):
        await store.update(7, {"silence_ms": 900, name: value})
    assert await store.get(7) == GuildSettings(voice="alloy")


async def test_turn_detection_and_eagerness_are_validated_and_stored(location: StoreLocation) -> None:
    store = await location.open()
    assert (await store.get(1)).turn_detection == "server_vad" and (await store.get(1)).eagerness == "auto"
    saved = await store.update(1, {"turn_detection": "semantic_vad", "eagerness": "high"})
    assert (saved.turn_detection, saved.eagerness) == ("semantic_vad", "high")
    with pytest.raises(StoreError, match="turn detection must be one of server_vad, semantic_vad"):
        await store.update(1, {"turn_detection": "none"})
    with pytest.raises(StoreError, match="eagerness must be one of low, medium, high, auto"):
        await store.update(1, {"eagerness": "eager"})
    await store.close()
    reopened = await location.open()
    assert await reopened.get(1) == saved
    await reopened.close()


async def test_validate_setting_normalises() -> None:
    assert validate_setting("voice", "  marin ") == "marin"
    assert validate_setting("vad_threshold", 1) == 1.0
    assert validate_setting("persona", None) is None


async def test_usage_adds_up_per_day_and_period(store: SettingsStore) -> None:
    await store.add_usage(5, "2026-11-23", seconds=30, input_tokens=100, output_tokens=50, cost_usd=0.01)
    await store.add_usage(5, "2026-11-24", seconds=60, input_tokens=10, output_tokens=5, cost_usd=0.002)
    await store.add_usage(5, "2026-11-24", seconds=30, cost_usd=0.001)
    await store.add_usage(6, "2026-11-24", seconds=999)
    today = await store.usage(5, "2026-11-24")
    assert today.seconds == 90 and today.minutes == 1.5
    assert today.input_tokens == 10 and today.output_tokens == 5
    assert today.cost_usd == pytest.approx(0.003)
    month = await store.usage(5, "2026-11-01", "2026-11-30")
    assert month.seconds == 120 and month.input_tokens == 110
    assert await store.usage(5, "2025-01-01") == Usage()


async def test_delete_guild_removes_everything_of_that_guild_only(store: SettingsStore) -> None:
    await store.update(1, {"voice": "ash"})
    await store.add_usage(1, "2026-11-24", seconds=10)
    await store.add_user_usage(1, "2026-11-24", 100, 5.0)
    await store.set_privacy(1, 100, no_transcript=True)
    await store.update(2, {"voice": "sage"})
    await store.add_user_usage(2, "2026-11-24", 100, 6.0)
    await store.set_privacy(2, 100, no_listen=True)
    assert await store.delete_guild(1) == 3  # settings, usage, talk time: the opt-out stays
    assert await store.get(1) == GuildSettings()
    assert await store.usage(1, "2026-11-24") == Usage()
    assert await store.top_talkers(1, "2026-11-01") == []
    assert await store.opted_out(1) == {100: Privacy(no_transcript=True)}
    assert await store.delete_guild(1, forget_choices=True) == 1
    assert await store.opted_out(1) == {}
    assert await store.export_guild(1) == {
        "guild_id": 1,
        "schema_version": SCHEMA_VERSION,
        "settings": None,
        "usage": [],
        "user_usage": [],
        "privacy": [],
        "personas": [],
    }
    assert (await store.get(2)).voice == "sage"
    assert await store.top_talkers(2, "2026-11-01") == [TalkTime(100, 6.0)]
    assert await store.opted_out(2) == {100: Privacy(no_listen=True)}


async def test_privacy_choices_per_user_and_guild(store: SettingsStore) -> None:
    assert await store.privacy(1, 10) == Privacy()
    assert await store.set_privacy(1, 10, no_transcript=True) == Privacy(no_transcript=True)
    both = Privacy(no_transcript=True, no_listen=True)
    assert await store.set_privacy(1, 10, no_listen=True) == both  # kept the other
    assert await store.set_privacy(1, 10) == Privacy(no_transcript=True, no_listen=True)  # nothing given: no change
    await store.set_privacy(1, 11, no_listen=True)
    await store.set_privacy(1, 12, no_transcript=False)  # the default: nothing to store
    await store.set_privacy(2, 10, no_transcript=True)
    assert await store.privacy(1, 10) == Privacy(no_transcript=True, no_listen=True)
    assert await store.privacy(2, 10) == Privacy(no_transcript=True)  # guilds are independent
    assert await store.opted_out(1) == {10: Privacy(True, True), 11: Privacy(no_listen=True)}
    await store.set_privacy(1, 10, no_transcript=False, no_listen=False)
    assert await store.opted_out(1) == {11: Privacy(no_listen=True)}
    assert [row["user_id"] for row in (await store.export_guild(1))["privacy"]] == [11]  # opting back in leaves no row


async def test_privacy_choices_survive_a_restart(location: StoreLocation) -> None:
    first = await location.open()
    await first.set_privacy(5, 50, no_listen=True)
    await first.close()
    second = await location.open()
    assert await second.opted_out(5) == {50: Privacy(no_listen=True)}
    await second.close()


async def test_talk_time_adds_up_per_user_and_ranks_top_talkers(store: SettingsStore) -> None:
    await store.add_user_usage(1, "2026-10-31", 10, 999.0)  # last month
    await store.add_user_usage(1, "2026-11-02", 10, 30.0)
    await store.add_user_usage(1, "2026-11-24", 10, 15.5)
    await store.add_user_usage(1, "2026-11-24", 20, 60.0)
    await store.add_user_usage(1, "2026-11-24", 30, 45.5)
    await store.add_user_usage(1, "2026-11-24", 40, 45.5)
    await store.add_user_usage(1, "2026-11-24", 50, 0.0)  # never talked: not a top talker
    await store.add_user_usage(2, "2026-11-24", 99, 500.0)
    month = await store.top_talkers(1, "2026-11-01", limit=10)
    assert month == [TalkTime(20, 60.0), TalkTime(10, 45.5), TalkTime(30, 45.5), TalkTime(40, 45.5)]
    assert await store.top_talkers(1, "2026-11-01", limit=2) == month[:2]
    assert await store.top_talkers(1, "2026-11-24", limit=1) == [TalkTime(20, 60.0)]
    assert month[0].minutes == 1.0 and month[0].user_id == 20
    assert dict(month) == {20: 60.0, 10: 45.5, 30: 45.5, 40: 45.5}  # rows are (user_id, seconds) pairs
    assert await store.top_talkers(3, "2026-11-01") == []


async def test_usage_since_a_day_is_the_month_so_far(store: SettingsStore) -> None:
    await store.add_usage(1, "2026-10-31", seconds=1000, cost_usd=9.0)
    await store.add_usage(1, "2026-11-01", seconds=60, input_tokens=10, output_tokens=20, cost_usd=0.25)
    await store.add_usage(1, "2026-11-24", seconds=30, input_tokens=1, output_tokens=2, cost_usd=0.5)
    await store.add_usage(2, "2026-11-24", seconds=7)
    month = await store.usage_since(1, "2026-11-01")
    assert month == Usage(seconds=90.0, input_tokens=11, output_tokens=22, cost_usd=0.75)
    assert await store.usage_since(1, "2026-12-01") == Usage()


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda s: s.add_user_usage(1, "24/11/2026", 10, 1.0), "YYYY-MM-DD"),
        (lambda s: s.add_user_usage(1, "2026-11-24", 10, -1.0), "cannot be negative"),
        (lambda s: s.add_user_usage(1, "2026-11-24", 10, float("nan")), "number of seconds"),
        (lambda s: s.add_user_usage(1, "2026-11-24", -5, 1.0), "Discord id"),
        (lambda s: s.top_talkers(1, "2026-11", 5), "YYYY-MM-DD"),
        (lambda s: s.top_talkers(1, "2026-11-01", 0), "1 or more"),
        (lambda s: s.usage_since(1, "yesterday"), "YYYY-MM-DD"),
        (lambda s: s.set_privacy(1, 10, no_listen="yes"), "on or off"),
    ],
)
async def test_bad_values_for_the_new_records_are_refused(
    store: SettingsStore, call: Callable[[SettingsStore], Awaitable[object]], reason: str
) -> None:
    await store.add_user_usage(1, "2026-11-24", 10, 1.0)
    with pytest.raises(StoreError, match=reason):
        await call(store)
    assert await store.top_talkers(1, "2026-11-01") == [TalkTime(10, 1.0)]
    assert await store.opted_out(1) == {}


async def test_export_holds_everything_stored_for_the_guild_as_json(store: SettingsStore) -> None:
    await store.update(1, {"voice": "ash", "mode": "push-to-talk", "transcripts": True})
    await store.add_usage(1, "2026-11-24", seconds=30, input_tokens=5, output_tokens=6, cost_usd=0.01)
    await store.add_user_usage(1, "2026-11-24", 10, 12.5)
    await store.set_privacy(1, 11, no_transcript=True)
    await store.update(2, {"voice": "sage"})
    await store.add_user_usage(2, "2026-11-24", 77, 1.0)
    exported = await store.export_guild(1)
    assert json.loads(json.dumps(exported)) == exported
    assert exported["guild_id"] == 1 and exported["schema_version"] == SCHEMA_VERSION
    assert exported["settings"] == dataclasses.asdict(GuildSettings(voice="ash", mode="push-to-talk", transcripts=True))
    assert exported["usage"] == [
        {"day": "2026-11-24", "seconds": 30.0, "input_tokens": 5, "output_tokens": 6, "cost_usd": 0.01}
    ]
    assert exported["user_usage"] == [{"day": "2026-11-24", "user_id": 10, "seconds": 12.5}]
    assert exported["privacy"] == [{"user_id": 11, "no_transcript": True, "no_listen": False}]
    assert set(exported) == {"guild_id", "schema_version", "settings", "usage", "user_usage", "privacy", "personas"}
    assert (await store.export_guild(2))["user_usage"] == [{"day": "2026-11-24", "user_id": 77, "seconds": 1.0}]


async def test_delete_user_removes_their_talk_time_and_keeps_their_opt_out(store: SettingsStore) -> None:
    await store.add_user_usage(1, "2026-11-24", 10, 5.0)
    await store.add_user_usage(2, "2026-11-24", 10, 6.0)
    await store.add_user_usage(1, "2026-11-24", 20, 7.0)
    await store.set_privacy(1, 10, no_listen=True)
    assert await store.delete_user(10, guild_id=2) == 1
    assert await store.top_talkers(2, "2026-11-01") == []
    assert await store.top_talkers(1, "2026-11-01") == [TalkTime(20, 7.0), TalkTime(10, 5.0)]
    assert await store.delete_user(10) == 1
    assert await store.top_talkers(1, "2026-11-01") == [TalkTime(20, 7.0)]
    assert await store.privacy(1, 10) == Privacy(no_listen=True)  # an opt-out protects them: it stays
    assert await store.delete_user(10, forget_choices=True) == 1
    assert await store.privacy(1, 10) == Privacy()


async def test_concurrent_calls_lose_no_increment_and_no_change(store: SettingsStore) -> None:
    await asyncio.gather(*(store.add_usage(1, "2026-11-24", seconds=1.0, input_tokens=2) for _ in range(20)))
    await asyncio.gather(*(store.add_user_usage(1, "2026-11-24", 10, 0.5) for _ in range(20)))
    await asyncio.gather(store.set_privacy(1, 10, no_listen=True), store.set_privacy(1, 10, no_transcript=True))
    await asyncio.gather(store.update(1, {"voice": "ash"}), store.update(1, {"silence_ms": 900}))
    assert await store.usage(1, "2026-11-24") == Usage(seconds=20.0, input_tokens=40)
    assert await store.top_talkers(1, "2026-11-01") == [TalkTime(10, 10.0)]
    assert await store.privacy(1, 10) == Privacy(no_transcript=True, no_listen=True)
    assert await store.get(1) == GuildSettings(voice="ash", silence_ms=900)


async def test_rows_written_into_another_store_are_the_same_rows_and_writing_twice_changes_nothing(
    store: SettingsStore, tmp_path: Path
) -> None:
    await store.update(1, {"voice": "ash", "daily_budget_min": 12.5})
    await store.add_usage(1, "2026-11-24", seconds=30, input_tokens=5, output_tokens=6, cost_usd=0.01)
    await store.add_user_usage(2, "2026-11-24", 10, 12.5)
    await store.set_privacy(2, 11, no_transcript=True)
    rows = await store.rows()
    await store.put_persona(2, "pirate", PIRATE, max_count=25)
    rows = await store.rows()
    assert rows.counts() == {"guild_settings": 1, "usage": 1, "user_usage": 1, "user_privacy": 1, "guild_personas": 1}
    assert (await store.rows(2)).counts() == {
        "guild_settings": 0,
        "usage": 0,
        "user_usage": 1,
        "user_privacy": 1,
        "guild_personas": 1,
    }
    copy = await SqliteStore.open(tmp_path / "copy.sqlite3")
    await copy.put_rows(rows)
    await copy.put_rows(rows)
    assert await copy.rows() == rows
    await copy.close()
    await store.put_rows(rows)  # into itself: nothing changes
    assert await store.rows() == rows


PIRATE = 'name = "Captain Rowan"\nage = 41\nstyle = "Gruff."\n'


async def test_server_personas_are_kept_per_guild_bounded_in_count_and_go_with_the_guild(store: SettingsStore) -> None:
    assert await store.put_persona(1, "pirate", PIRATE, max_count=2) is True
    assert await store.put_persona(1, "pirate", PIRATE.replace("41", "42"), max_count=2) is False  # replaced
    assert await store.put_persona(1, "bard", PIRATE, max_count=2) is True
    with pytest.raises(StoreError, match="already has 2 personas"):
        await store.put_persona(1, "third", PIRATE, max_count=2)
    assert await store.put_persona(1, "bard", PIRATE, max_count=2) is False  # an edit is fine when full
    await store.put_persona(2, "pirate", PIRATE, max_count=2)
    assert list(await store.personas(1)) == ["bard", "pirate"]
    assert await store.persona(1, "pirate") == PIRATE.replace("41", "42")
    assert await store.persona(1, "nobody") is None and await store.personas(3) == {}
    exported = await store.export_guild(1)
    assert exported["personas"] == [
        {"key": "bard", "toml": PIRATE},
        {"key": "pirate", "toml": PIRATE.replace("41", "42")},
    ]
    assert await store.delete_persona(1, "bard") is True and await store.delete_persona(1, "bard") is False
    assert await store.delete_guild(1) == 1  # the server's persona goes with its data
    assert await store.personas(1) == {} and list(await store.personas(2)) == ["pirate"]


@pytest.mark.parametrize(
    ("key", "toml"), [("Pirate", PIRATE), ("-x", PIRATE), ("a" * 33, PIRATE), ("ok", "x" * 40_000)]
)
async def test_bad_persona_keys_and_oversized_texts_are_refused(store: SettingsStore, key: str, toml: str) -> None:
    with pytest.raises(StoreError):
        await store.put_persona(1, key, toml, max_count=25)
    assert await store.personas(1) == {}
