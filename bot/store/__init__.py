"""What the bot remembers per server: settings, usage counters, talk time and members' privacy choices.

The package itself is pure (the records and the interface, no asyncio): :mod:`.records` holds the values and their
checks, :mod:`.interface` the :class:`SettingsStore` protocol every backend implements. The backends are drivers
(they run their work off the event loop): :mod:`.sqlite` (the embedded default, one file in ``DATA_DIR``) and
:mod:`.postgres` (``DATABASE_URL=postgresql://...``); :func:`bot.store.opening.open_store` picks one. Imports nothing
else of the bot but :mod:`bot.secret`.
"""

from __future__ import annotations

from bot.store.interface import STORE_CALL_TIMEOUT_S, SettingsStore
from bot.store.records import (
    EAGERNESS_LEVELS,
    LISTENING_MODES,
    SCHEMA_VERSION,
    SETTING_NAMES,
    TURN_DETECTIONS,
    GuildSettings,
    Privacy,
    StoreError,
    StoreOutcomeUnknown,
    StoreRows,
    StoreUnavailable,
    TalkTime,
    Usage,
    validate_setting,
)

__all__ = [
    "EAGERNESS_LEVELS",
    "LISTENING_MODES",
    "SCHEMA_VERSION",
    "SETTING_NAMES",
    "STORE_CALL_TIMEOUT_S",
    "TURN_DETECTIONS",
    "GuildSettings",
    "Privacy",
    "SettingsStore",
    "StoreError",
    "StoreOutcomeUnknown",
    "StoreRows",
    "StoreUnavailable",
    "TalkTime",
    "Usage",
    "validate_setting",
]
