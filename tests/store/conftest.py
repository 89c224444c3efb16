"""The store suite runs against both backends: SQLite on a real file, PostgreSQL on a real server started here.

``location`` is parametrised over ``sqlite`` and ``postgres``: a fresh file, or a fresh database on the session's
server. Without PostgreSQL binaries the ``postgres`` cases skip with the reason, except in CI (``CI=true``), where
they fail: a backend that cannot be tested is not a pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.secret import Secret
from bot.store import SettingsStore
from bot.store.postgres import PostgresStore
from bot.store.sqlite import DB_FILENAME, SqliteStore
from tests.store.pg_server import PostgresServer, PostgresUnavailable, in_ci

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, in a temporary directory."""
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as error:
        if in_ci():
            pytest.fail(f"PostgreSQL is required in CI: {error}")
        pytest.skip(f"PostgreSQL cannot be started here: {error}")
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class StoreLocation:
    """Where one test's store lives: a SQLite file or a PostgreSQL database; open it as often as needed."""

    backend: str
    path: Path | None = None
    url: Secret | None = None

    async def open(self, **options: Any) -> SettingsStore:
        if self.path is not None:
            return await SqliteStore.open(self.path, **options)
        assert self.url is not None
        return await PostgresStore.connect(self.url, **options)

    def describe(self) -> str:
        """The location as one command-line argument for a helper process."""
        return str(self.path) if self.path is not None else (self.url.reveal() if self.url else "")


@pytest.fixture(params=BACKENDS)
async def location(request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    if request.param == "sqlite":
        return StoreLocation("sqlite", path=tmp_path / "data" / DB_FILENAME)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return StoreLocation("postgres", url=await server.create_database())


@pytest.fixture
async def store(location: StoreLocation) -> AsyncIterator[SettingsStore]:
    opened = await location.open()
    yield opened
    await opened.close()
