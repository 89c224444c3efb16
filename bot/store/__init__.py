"""What the bot remembers per server: settings, usage counters and members' privacy choices.

Pure logic over the standard library (no asyncio, discord or websockets); the SQLite backend is
:mod:`.sqlite`, and other backends land beside it behind the same interface. Imports nothing else of the bot.
"""

from __future__ import annotations

from bot.store.sqlite import (
    DB_FILENAME,
    EAGERNESS_LEVELS,
    LISTENING_MODES,
    SCHEMA_VERSION,
    SETTING_NAMES,
    TURN_DETECTIONS,
    GuildSettings,
    Privacy,
    SettingsStore,
    StoreError,
    TalkTime,
    Usage,
    validate_setting,
)

__all__ = [
    "DB_FILENAME",
    "EAGERNESS_LEVELS",
    "LISTENING_MODES",
    "SCHEMA_VERSION",
    "SETTING_NAMES",
    "TURN_DETECTIONS",
    "GuildSettings",
    "Privacy",
    "SettingsStore",
    "StoreError",
    "TalkTime",
    "Usage",
    "validate_setting",
]
