"""Store operation time, measured from outside the store: a stand-in that times each public method call into
``voicebot_store_operation_seconds{operation=…}``. A call that returns an awaitable is timed until it completes,
so the same stand-in serves a synchronous store and an asynchronous one."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from bot.ops import metrics

T = TypeVar("T")


class _TimedStore:
    def __init__(self, store: object, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        clock = self._clock

        @functools.wraps(attribute)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                result = attribute(*args, **kwargs)
            except BaseException:
                metrics.store_operation(name, clock() - started)
                raise
            if inspect.isawaitable(result):
                return _timed_await(result, name, started, clock)
            metrics.store_operation(name, clock() - started)
            return result

        return timed


async def _timed_await(result: Awaitable[Any], name: str, started: float, clock: Callable[[], float]) -> Any:
    try:
        return await result
    finally:
        metrics.store_operation(name, clock() - started)


def timed_store(store: T, *, clock: Callable[[], float] = time.perf_counter) -> T:
    """``store`` with every public method call timed (a failing call is timed too, then raises as before)."""
    return cast(T, _TimedStore(store, clock))
