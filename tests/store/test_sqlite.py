"""The settings store on a real SQLite file."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
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


@pytest.fixture
def store(tmp_path: Path) -> SettingsStore:
    return SettingsStore.in_data_dir(tmp_path / "data")


def test_defaults_when_nothing_is_stored(store: SettingsStore) -> None:
    assert store.get(1) == GuildSettings()
    assert store.schema_version == SCHEMA_VERSION


def test_settings_survive_a_restart(tmp_path: Path) -> None:
    first = SettingsStore.in_data_dir(tmp_path)
    saved = first.update(42, {"voice": "cedar", "interruptions": False, "silence_ms": 800, "mode": "name"})
    first.close()
    second = SettingsStore.in_data_dir(tmp_path)
    assert second.get(42) == saved
    assert saved.voice == "cedar" and saved.interruptions is False and saved.silence_ms == 800
    assert second.get(43) == GuildSettings()  # guilds are independent


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
def test_bad_values_are_refused_and_nothing_changes(
    store: SettingsStore, name: str, value: object, reason: str
) -> None:
    store.update(7, {"voice": "alloy"})
    with pytest.raises(StoreError, match=reason):
        store.update(7, {"silence_ms": 900, name: value})
    assert store.get(7) == GuildSettings(voice="alloy")


def test_turn_detection_and_eagerness_are_validated_stored_and_migrated(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "td.sqlite3")
    assert store.get(1).turn_detection == "server_vad" and store.get(1).eagerness == "auto"
    saved = store.update(1, {"turn_detection": "semantic_vad", "eagerness": "high"})
    assert store.get(1) == saved and (saved.turn_detection, saved.eagerness) == ("semantic_vad", "high")
    with pytest.raises(StoreError, match="turn detection must be one of server_vad, semantic_vad"):
        store.update(1, {"turn_detection": "none"})
    with pytest.raises(StoreError, match="eagerness must be one of low, medium, high, auto"):
        store.update(1, {"eagerness": "eager"})
    store.close()


def test_validate_setting_normalises() -> None:
    assert validate_setting("voice", "  marin ") == "marin"
    assert validate_setting("vad_threshold", 1) == 1.0
    assert validate_setting("persona", None) is None


def test_usage_adds_up_per_day_and_period(store: SettingsStore) -> None:
    store.add_usage(5, "2026-11-23", seconds=30, input_tokens=100, output_tokens=50, cost_usd=0.01)
    store.add_usage(5, "2026-11-24", seconds=60, input_tokens=10, output_tokens=5, cost_usd=0.002)
    store.add_usage(5, "2026-11-24", seconds=30, cost_usd=0.001)
    store.add_usage(6, "2026-11-24", seconds=999)
    today = store.usage(5, "2026-11-24")
    assert today.seconds == 90 and today.minutes == 1.5
    assert today.input_tokens == 10 and today.output_tokens == 5
    assert today.cost_usd == pytest.approx(0.003)
    month = store.usage(5, "2026-11-01", "2026-11-30")
    assert month.seconds == 120 and month.input_tokens == 110
    assert store.usage(5, "2025-01-01") == Usage()


def test_delete_guild_removes_everything_of_that_guild_only(store: SettingsStore) -> None:
    store.update(1, {"voice": "ash"})
    store.add_usage(1, "2026-11-24", seconds=10)
    store.add_user_usage(1, "2026-11-24", 100, 5.0)
    store.set_privacy(1, 100, no_transcript=True)
    store.update(2, {"voice": "sage"})
    store.add_user_usage(2, "2026-11-24", 100, 6.0)
    store.set_privacy(2, 100, no_listen=True)
    assert store.delete_guild(1) == 3  # settings, usage, talk time: the opt-out stays
    assert store.get(1) == GuildSettings()
    assert store.usage(1, "2026-11-24") == Usage()
    assert store.top_talkers(1, "2026-11-01") == [] and store.opted_out(1) == {100: Privacy(no_transcript=True)}
    assert store.delete_guild(1, forget_choices=True) == 1
    assert store.opted_out(1) == {}
    assert store.export_guild(1) == {
        "guild_id": 1,
        "schema_version": SCHEMA_VERSION,
        "settings": None,
        "usage": [],
        "user_usage": [],
        "privacy": [],
    }
    assert store.get(2).voice == "sage"
    assert store.top_talkers(2, "2026-11-01") == [TalkTime(100, 6.0)]
    assert store.opted_out(2) == {100: Privacy(no_listen=True)}


V1_SCHEMA = (
    "CREATE TABLE guild_settings (guild_id INTEGER PRIMARY KEY, persona TEXT, voice TEXT, interruptions INTEGER "
    "NOT NULL DEFAULT 1, vad_threshold REAL NOT NULL DEFAULT 0.5, silence_ms INTEGER NOT NULL DEFAULT 500, "
    "transcripts INTEGER NOT NULL DEFAULT 0, transcript_channel_id INTEGER, daily_budget_min REAL)",
    "CREATE TABLE usage (guild_id INTEGER NOT NULL, day TEXT NOT NULL, seconds REAL NOT NULL DEFAULT 0, "
    "input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0, "
    "cost_usd REAL NOT NULL DEFAULT 0, PRIMARY KEY (guild_id, day))",
)
V2_SCHEMA = (*V1_SCHEMA, "ALTER TABLE guild_settings ADD COLUMN mode TEXT NOT NULL DEFAULT 'always'")


def old_database(path: Path, version: int, statements: tuple[str, ...]) -> None:
    """A file as an older bot left it: written by hand with that version's schema, not by today's code."""
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


def test_migrates_a_version_1_file_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old_database(path, 1, (*V1_SCHEMA, "INSERT INTO guild_settings (guild_id, voice) VALUES (9, 'verse')"))
    store = SettingsStore(path)
    assert store.schema_version == SCHEMA_VERSION
    assert store.get(9) == GuildSettings(voice="verse", mode="always")


def test_migrates_a_version_2_file_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite3"
    old_database(
        path,
        2,
        (
            *V2_SCHEMA,
            "INSERT INTO guild_settings (guild_id, voice, mode, transcripts) VALUES (9, 'verse', 'name', 1)",
            "INSERT INTO usage (guild_id, day, seconds, input_tokens, cost_usd) VALUES (9, '2026-11-20', 42, 7, 0.5)",
        ),
    )
    store = SettingsStore(path)
    assert store.schema_version == SCHEMA_VERSION == 4
    assert store.get(9) == GuildSettings(voice="verse", mode="name", transcripts=True)
    assert store.usage(9, "2026-11-20") == Usage(seconds=42.0, input_tokens=7, cost_usd=0.5)
    assert store.privacy(9, 1) == Privacy()  # the new tables exist and work
    store.set_privacy(9, 1, no_listen=True)
    store.add_user_usage(9, "2026-11-20", 1, 12.0)
    store.close()
    again = SettingsStore(path)  # and a second open does not migrate again
    assert again.schema_version == SCHEMA_VERSION
    assert again.privacy(9, 1) == Privacy(no_listen=True)
    assert again.top_talkers(9, "2026-11-01") == [TalkTime(1, 12.0)]


def test_a_newer_schema_or_unreadable_path_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this bot"):
        SettingsStore(path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open the settings store"):
        SettingsStore(blocker / "sub" / "db.sqlite3")


def test_privacy_choices_per_user_and_guild(store: SettingsStore) -> None:
    assert store.privacy(1, 10) == Privacy()
    assert store.set_privacy(1, 10, no_transcript=True) == Privacy(no_transcript=True)
    assert store.set_privacy(1, 10, no_listen=True) == Privacy(no_transcript=True, no_listen=True)  # kept the other
    assert store.set_privacy(1, 10) == Privacy(no_transcript=True, no_listen=True)  # nothing given: no change
    store.set_privacy(1, 11, no_listen=True)
    store.set_privacy(1, 12, no_transcript=False)  # the default: nothing to store
    store.set_privacy(2, 10, no_transcript=True)
    assert store.privacy(1, 10) == Privacy(no_transcript=True, no_listen=True)
    assert store.privacy(2, 10) == Privacy(no_transcript=True)  # guilds are independent
    assert store.opted_out(1) == {10: Privacy(True, True), 11: Privacy(no_listen=True)}
    store.set_privacy(1, 10, no_transcript=False, no_listen=False)
    assert store.opted_out(1) == {11: Privacy(no_listen=True)}
    assert [row["user_id"] for row in store.export_guild(1)["privacy"]] == [11]  # opting back in leaves no row


def test_privacy_choices_survive_a_restart(tmp_path: Path) -> None:
    first = SettingsStore.in_data_dir(tmp_path)
    first.set_privacy(5, 50, no_listen=True)
    first.close()
    assert SettingsStore.in_data_dir(tmp_path).opted_out(5) == {50: Privacy(no_listen=True)}


def test_talk_time_adds_up_per_user_and_ranks_top_talkers(store: SettingsStore) -> None:
    store.add_user_usage(1, "2026-10-31", 10, 999.0)  # last month
    store.add_user_usage(1, "2026-11-02", 10, 30.0)
    store.add_user_usage(1, "2026-11-24", 10, 15.5)
    store.add_user_usage(1, "2026-11-24", 20, 60.0)
    store.add_user_usage(1, "2026-11-24", 30, 45.5)
    store.add_user_usage(1, "2026-11-24", 40, 45.5)
    store.add_user_usage(1, "2026-11-24", 50, 0.0)  # never talked: not a top talker
    store.add_user_usage(2, "2026-11-24", 99, 500.0)
    month = store.top_talkers(1, "2026-11-01", limit=10)
    assert month == [TalkTime(20, 60.0), TalkTime(10, 45.5), TalkTime(30, 45.5), TalkTime(40, 45.5)]
    assert store.top_talkers(1, "2026-11-01", limit=2) == month[:2]
    assert store.top_talkers(1, "2026-11-24", limit=1) == [TalkTime(20, 60.0)]
    assert month[0].minutes == 1.0 and month[0].user_id == 20
    assert dict(month) == {20: 60.0, 10: 45.5, 30: 45.5, 40: 45.5}  # rows are (user_id, seconds) pairs
    assert store.top_talkers(3, "2026-11-01") == []


def test_usage_since_a_day_is_the_month_so_far(store: SettingsStore) -> None:
    store.add_usage(1, "2026-10-31", seconds=1000, cost_usd=9.0)
    store.add_usage(1, "2026-11-01", seconds=60, input_tokens=10, output_tokens=20, cost_usd=0.25)
    store.add_usage(1, "2026-11-24", seconds=30, input_tokens=1, output_tokens=2, cost_usd=0.5)
    store.add_usage(2, "2026-11-24", seconds=7)
    month = store.usage_since(1, "2026-11-01")
    assert month == Usage(seconds=90.0, input_tokens=11, output_tokens=22, cost_usd=0.75)
    assert store.usage_since(1, "2026-12-01") == Usage()


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
def test_bad_values_for_the_new_records_are_refused(
    store: SettingsStore, call: Callable[[SettingsStore], object], reason: str
) -> None:
    store.add_user_usage(1, "2026-11-24", 10, 1.0)
    with pytest.raises(StoreError, match=reason):
        call(store)
    assert store.top_talkers(1, "2026-11-01") == [TalkTime(10, 1.0)]
    assert store.opted_out(1) == {}


def test_export_holds_everything_stored_for_the_guild_as_json(store: SettingsStore) -> None:
    store.update(1, {"voice": "ash", "mode": "push-to-talk", "transcripts": True})
    store.add_usage(1, "2026-11-24", seconds=30, input_tokens=5, output_tokens=6, cost_usd=0.01)
    store.add_user_usage(1, "2026-11-24", 10, 12.5)
    store.set_privacy(1, 11, no_transcript=True)
    store.update(2, {"voice": "sage"})
    store.add_user_usage(2, "2026-11-24", 77, 1.0)
    exported = store.export_guild(1)
    assert json.loads(json.dumps(exported)) == exported
    assert exported["guild_id"] == 1 and exported["schema_version"] == SCHEMA_VERSION
    assert exported["settings"] == dataclasses.asdict(GuildSettings(voice="ash", mode="push-to-talk", transcripts=True))
    assert exported["usage"] == [
        {"day": "2026-11-24", "seconds": 30.0, "input_tokens": 5, "output_tokens": 6, "cost_usd": 0.01}
    ]
    assert exported["user_usage"] == [{"day": "2026-11-24", "user_id": 10, "seconds": 12.5}]
    assert exported["privacy"] == [{"user_id": 11, "no_transcript": True, "no_listen": False}]
    assert set(exported) == {"guild_id", "schema_version", "settings", "usage", "user_usage", "privacy"}
    assert store.export_guild(2)["user_usage"] == [{"day": "2026-11-24", "user_id": 77, "seconds": 1.0}]


def test_only_ids_and_numbers_are_stored_about_users(tmp_path: Path) -> None:
    store = SettingsStore.in_data_dir(tmp_path)
    store.add_user_usage(1, "2026-11-24", 10, 12.5)
    store.set_privacy(1, 10, no_transcript=True)
    store.close()
    db = sqlite3.connect(tmp_path / "voicebot.sqlite3")
    for table in ("user_usage", "user_privacy"):
        types = {row[2] for row in db.execute(f"PRAGMA table_info({table})") if row[1] != "day"}
        assert types <= {"INTEGER", "REAL"}, (table, types)
    db.close()


def test_delete_user_removes_their_talk_time_and_keeps_their_opt_out(store: SettingsStore) -> None:
    store.add_user_usage(1, "2026-11-24", 10, 5.0)
    store.add_user_usage(2, "2026-11-24", 10, 6.0)
    store.add_user_usage(1, "2026-11-24", 20, 7.0)
    store.set_privacy(1, 10, no_listen=True)
    assert store.delete_user(10, guild_id=2) == 1
    assert store.top_talkers(2, "2026-11-01") == []
    assert store.top_talkers(1, "2026-11-01") == [TalkTime(20, 7.0), TalkTime(10, 5.0)]
    assert store.delete_user(10) == 1
    assert store.top_talkers(1, "2026-11-01") == [TalkTime(20, 7.0)]
    assert store.privacy(1, 10) == Privacy(no_listen=True)  # an opt-out protects them: it stays
    assert store.delete_user(10, forget_choices=True) == 1
    assert store.privacy(1, 10) == Privacy()
