"""The retry policy as pure functions: whether to retry, how long to wait, and when to renew a session."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from bot.realtime.errors import RealtimeError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter."""

    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_attempts: int | None = None  # None: retry until closed
    #: Renew this long before the provider's maximum session duration.
    renew_margin_s: float = 120.0
    #: A connection that lasted this long resets the attempt counter.
    stable_after_s: float = 30.0


def should_retry(error: BaseException, attempt: int, policy: RetryPolicy) -> bool:
    """Whether to reconnect after ``error`` on the ``attempt``-th consecutive failure (1-based)."""
    if isinstance(error, RealtimeError) and not error.retryable:
        return False
    return policy.max_attempts is None or attempt < policy.max_attempts


def backoff_delay_s(attempt: int, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> float:
    """The wait before reconnect attempt ``attempt`` (1-based): uniform in ``[cap/2, cap]``, ``cap`` doubling."""
    cap: float = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** max(attempt - 1, 0))
    return cap / 2 + float(rand()) * cap / 2


def renew_at_s(connected_at_s: float, max_session_s: float, policy: RetryPolicy) -> float:
    """When (on the injected clock) to open a fresh session before the server ends this one."""
    return connected_at_s + max(max_session_s - policy.renew_margin_s, max_session_s / 2)
