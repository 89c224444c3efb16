"""The one interface every store backend implements: :class:`SettingsStore`.

Every call is a coroutine that never blocks the event loop: the SQLite backend runs its work on one worker thread
of its own, the PostgreSQL backend talks to the server through ``asyncpg``. Every call waits a bounded time and
raises :class:`~bot.store.records.StoreUnavailable` (a :class:`~bot.store.records.StoreError`) with a clear message
when the store does not answer in time or fails; a bad value is a :class:`~bot.store.records.StoreError` raised
before any I/O. Pure: a :class:`typing.Protocol` over the records, importing no asyncio.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from bot.store.records import GuildSettings, Privacy, StoreRows, TalkTime, Usage

#: Longest wait for one store call (queueing included) before it fails with StoreUnavailable.
STORE_CALL_TIMEOUT_S = 5.0


class SettingsStore(Protocol):
    """Per-guild settings, usage counters, talk time and privacy choices, shared by every bot process."""

    @property
    def description(self) -> str:
        """Where the store lives, for messages (a file path, or a database without its password)."""

    async def schema_version(self) -> int:
        """The schema version the stored data is at."""

    async def get(self, guild_id: int) -> GuildSettings:
        """The guild's settings (the defaults when nothing is stored)."""

    async def update(self, guild_id: int, changes: Mapping[str, Any]) -> GuildSettings:
        """Validate and save ``changes``; returns the new settings. A bad value changes nothing."""

    async def add_usage(
        self,
        guild_id: int,
        day: str,
        *,
        seconds: float = 0.0,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        """Add to the guild's counters for ``day`` (``YYYY-MM-DD``, UTC)."""

    async def usage(self, guild_id: int, first_day: str, last_day: str | None = None) -> Usage:
        """The guild's usage summed over ``first_day`` .. ``last_day`` (inclusive; one day when omitted)."""

    async def usage_since(self, guild_id: int, since_day: str) -> Usage:
        """The guild's usage from ``since_day`` (inclusive) on: e.g. this month so far."""

    async def add_user_usage(self, guild_id: int, day: str, user_id: int, seconds: float) -> None:
        """Add ``seconds`` of ``user_id``'s speech on ``day`` to the guild's counters."""

    async def top_talkers(self, guild_id: int, since_day: str, limit: int = 5) -> list[TalkTime]:
        """The guild's ``limit`` users who talked longest from ``since_day`` on, longest first (ties by id)."""

    async def privacy(self, guild_id: int, user_id: int) -> Privacy:
        """The user's privacy choices in the guild (the defaults when nothing is stored)."""

    async def set_privacy(
        self, guild_id: int, user_id: int, *, no_transcript: bool | None = None, no_listen: bool | None = None
    ) -> Privacy:
        """Change the given choices (``None`` keeps one); returns the new ones. Back on the defaults: no row."""

    async def opted_out(self, guild_id: int) -> dict[int, Privacy]:
        """Every user of the guild with at least one privacy choice on, by user id."""

    async def personas(self, guild_id: int) -> dict[str, str]:
        """The personas the guild's managers made: key -> TOML, by key."""

    async def persona(self, guild_id: int, key: str) -> str | None:
        """The TOML of the guild's persona ``key`` (``None`` when there is none)."""

    async def put_persona(self, guild_id: int, key: str, toml: str, *, max_count: int) -> bool:
        """Save the guild's persona ``key`` (replacing one of that key); returns whether it is new.

        Raises:
            StoreError: a new persona would make more than ``max_count`` (nothing is saved).
        """

    async def delete_persona(self, guild_id: int, key: str) -> bool:
        """Delete the guild's persona ``key``; returns whether there was one."""

    async def export_guild(self, guild_id: int) -> dict[str, Any]:
        """Everything stored for the guild, JSON-ready (ids, numbers, settings, its personas; never names of members
        or text of speech)."""

    async def delete_guild(self, guild_id: int, *, forget_choices: bool = False) -> int:
        """Delete what is stored for the guild (settings, usage, talk time, its personas); returns the rows removed.

        Members' privacy choices stay unless ``forget_choices``: an opt-out protects its member, and deleting it
        would start transcribing them and sending their audio again (as with :meth:`delete_user`).
        """

    async def delete_user(self, user_id: int, guild_id: int | None = None, *, forget_choices: bool = False) -> int:
        """Delete one user's talk time (in one guild, or all); their opt-outs too with ``forget_choices``."""

    async def rows(self, guild_id: int | None = None) -> StoreRows:
        """Every stored row (of one guild, or of all), for exports and copies."""

    async def put_rows(self, rows: StoreRows) -> None:
        """Write ``rows`` as they are, replacing the same keys (idempotent: writing twice changes nothing)."""

    async def close(self) -> None:
        """Finish pending work and release the file or the connections. Closing twice is harmless."""
