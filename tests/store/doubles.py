"""A store double that fails on write: a real store whose writes raise :class:`~bot.store.StoreUnavailable` (as a
locked file or an unreachable server makes them) while :attr:`FailingWrites.failing` is set; reads go through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from bot.store import Privacy, SettingsStore, StoreRows, StoreUnavailable


class FailingWrites:
    """Wraps a real store; every write is refused while ``failing``, and counted in ``refused``."""

    def __init__(self, inner: SettingsStore) -> None:
        self.inner = inner
        self.failing = True
        self.refused: list[str] = []

    def as_store(self) -> SettingsStore:
        return cast(SettingsStore, self)

    def __getattr__(self, name: str) -> Any:  # the reads, close and description
        return getattr(self.inner, name)

    def _refuse(self, what: str) -> None:
        if self.failing:
            self.refused.append(what)
            raise StoreUnavailable(f"the settings store did not answer within 5 s ({what})")

    async def update(self, guild_id: int, changes: Mapping[str, Any]) -> Any:
        self._refuse("saving settings")
        return await self.inner.update(guild_id, changes)

    async def add_usage(self, guild_id: int, day: str, **counters: Any) -> None:
        self._refuse("adding usage")
        await self.inner.add_usage(guild_id, day, **counters)

    async def add_user_usage(self, guild_id: int, day: str, user_id: int, seconds: float) -> None:
        self._refuse("adding talk time")
        await self.inner.add_user_usage(guild_id, day, user_id, seconds)

    async def set_privacy(self, guild_id: int, user_id: int, **choices: bool | None) -> Privacy:
        self._refuse("saving privacy choices")
        return await self.inner.set_privacy(guild_id, user_id, **choices)

    async def delete_guild(self, guild_id: int, *, forget_choices: bool = False) -> int:
        self._refuse("deleting a server's data")
        return await self.inner.delete_guild(guild_id, forget_choices=forget_choices)

    async def delete_user(self, user_id: int, guild_id: int | None = None, *, forget_choices: bool = False) -> int:
        self._refuse("deleting a member's data")
        return await self.inner.delete_user(user_id, guild_id, forget_choices=forget_choices)

    async def put_rows(self, rows: StoreRows) -> None:
        self._refuse("writing rows")
        await self.inner.put_rows(rows)
