"""When a voice session must end: alone too long, too long overall, or the guild's daily minutes spent.

Pure logic with the clock passed in, so the rules are tested without waiting.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class StopReason(enum.Enum):
    """Why a session ended on its own."""

    ALONE = "alone"
    MAX_LENGTH = "max_length"
    DAILY_BUDGET = "daily_budget"


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """The limits of one guild's session; 0 disables ``daily_budget_s``."""

    idle_leave_s: float = 60.0
    max_session_s: float = 3600.0
    daily_budget_s: float = 0.0


class SessionTimer:
    """Tracks one session's age and loneliness against its :class:`SessionLimits`."""

    def __init__(self, limits: SessionLimits, started_at_s: float) -> None:
        self.limits = limits
        self.started_at_s = started_at_s
        self._alone_since_s: float | None = None

    def set_alone(self, alone: bool, now_s: float) -> None:
        """Record whether the bot is the only member left in its channel (bots do not count as company)."""
        if not alone:
            self._alone_since_s = None
        elif self._alone_since_s is None:
            self._alone_since_s = now_s

    def elapsed_s(self, now_s: float) -> float:
        return max(0.0, now_s - self.started_at_s)

    def check(self, now_s: float, used_today_before_s: float = 0.0) -> StopReason | None:
        """The reason to stop now, if any. ``used_today_before_s``: the guild's usage today before this session."""
        if self._alone_since_s is not None and now_s - self._alone_since_s >= self.limits.idle_leave_s:
            return StopReason.ALONE
        elapsed = self.elapsed_s(now_s)
        if elapsed >= self.limits.max_session_s:
            return StopReason.MAX_LENGTH
        budget = self.limits.daily_budget_s
        if budget > 0 and used_today_before_s + elapsed >= budget:
            return StopReason.DAILY_BUDGET
        return None

    def remaining_today_s(self, now_s: float, used_today_before_s: float) -> float | None:
        """Seconds left in the daily budget (None when there is no budget)."""
        budget = self.limits.daily_budget_s
        if budget <= 0:
            return None
        return max(0.0, budget - used_today_before_s - self.elapsed_s(now_s))
