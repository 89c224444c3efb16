"""The settings store on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.store import SCHEMA_VERSION, GuildSettings, SettingsStore, StoreError, Usage, validate_setting


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
    store.update(2, {"voice": "sage"})
    assert store.delete_guild(1) == 2
    assert store.get(1) == GuildSettings()
    assert store.usage(1, "2026-11-24") == Usage()
    assert store.get(2).voice == "sage"


def test_migrates_an_old_schema_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    SettingsStore(path).close()
    db = sqlite3.connect(path)  # make it a version-1 file holding a row, as an older bot would have left it
    db.execute("DROP TABLE guild_settings")
    db.execute(
        "CREATE TABLE guild_settings (guild_id INTEGER PRIMARY KEY, persona TEXT, voice TEXT, interruptions INTEGER "
        "NOT NULL DEFAULT 1, vad_threshold REAL NOT NULL DEFAULT 0.5, silence_ms INTEGER NOT NULL DEFAULT 500, "
        "transcripts INTEGER NOT NULL DEFAULT 0, transcript_channel_id INTEGER, daily_budget_min REAL)"
    )
    db.execute("INSERT INTO guild_settings (guild_id, voice) VALUES (9, 'verse')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = SettingsStore(path)
    assert store.schema_version == SCHEMA_VERSION
    assert store.get(9) == GuildSettings(voice="verse", mode="always")


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
