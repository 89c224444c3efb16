"""What every part of one guild's session reads and the session alone changes: who it is, its settings and persona,
members' privacy choices, the clock, and the tasks it started."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.persona import Persona
from bot.room.listening import ListeningMode
from bot.store import GuildSettings, Privacy

_log = logging.getLogger(__name__)

_NO_OPT_OUT = Privacy()


@dataclass
class SessionState:
    """The shared, current view of one guild's session (one object, held by reference by each part)."""

    guild_id: int
    persona: Persona
    settings: GuildSettings
    now: Callable[[], float]
    today: Callable[[], str]
    privacy: Mapping[int, Privacy] = field(default_factory=dict)
    closed: bool = False

    @property
    def mode(self) -> ListeningMode:
        return ListeningMode.parse(self.settings.mode)

    def privacy_of(self, user_id: int) -> Privacy:
        return self.privacy.get(user_id, _NO_OPT_OUT)


class TaskSet:
    """Fire-and-forget coroutines of one session: kept referenced until done, failures logged with the guild."""

    def __init__(self, guild_id: int) -> None:
        self._guild_id = guild_id
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def __len__(self) -> int:
        return len(self._tasks)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("guild %s: conversation call failed", self._guild_id, exc_info=task.exception())
