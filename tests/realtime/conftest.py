from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from tests.realtime.server import RealtimeTestServer, Script

ServerFactory = Callable[..., AbstractAsyncContextManager[RealtimeTestServer]]


@pytest.fixture
def realtime_server() -> ServerFactory:
    """Start a :class:`RealtimeTestServer`; on exit, assert every client event matched the openai schema and
    the script raised nothing."""

    @asynccontextmanager
    async def start(script: Script | list[Script], **options: Any) -> AsyncIterator[RealtimeTestServer]:
        async with RealtimeTestServer(script, **options) as server:
            try:
                yield server
            except BaseException:
                if server.script_errors:  # the script's failure explains the test's
                    raise server.script_errors[0] from None
                raise
        assert server.schema_problems == []
        if server.script_errors:
            raise server.script_errors[0]

    return start
