"""Choosing and opening the store: PostgreSQL when ``DATABASE_URL`` is set, else the SQLite file in ``DATA_DIR``;
and copying a SQLite store into PostgreSQL (``voicebot store migrate --from FILE``)."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.secret import Secret
from bot.store.interface import SettingsStore
from bot.store.postgres import PostgresStore, is_postgres_url
from bot.store.records import StoreError
from bot.store.sqlite import SqliteStore

_log = logging.getLogger(__name__)


async def open_store(database_url: Secret | None, data_dir: Path) -> SettingsStore:
    """The bot's store: the PostgreSQL database at ``database_url`` if given, else ``DATA_DIR/voicebot.sqlite3``.

    Raises:
        StoreError: the store cannot be opened (the message names it, without a password).
    """
    if database_url:
        if not is_postgres_url(database_url.reveal()):
            raise StoreError("DATABASE_URL must start with postgresql:// (or postgres://)")
        store: SettingsStore = await PostgresStore.connect(database_url)
    else:
        store = await SqliteStore.in_data_dir(data_dir)
    _log.info("settings store: %s", store.description)
    return store


async def copy_sqlite_to_postgres(sqlite_file: Path, database_url: Secret) -> dict[str, int]:
    """Copy every row of the SQLite store at ``sqlite_file`` into the PostgreSQL database; returns rows per table.

    Idempotent: each row is written as it is in the file (a second copy changes nothing), rows only in PostgreSQL
    stay. The file is opened (and migrated to the current schema) but not otherwise changed.

    Raises:
        StoreError: the file does not exist or either store cannot be opened or written.
    """
    if not is_postgres_url(database_url.reveal()):
        raise StoreError("DATABASE_URL must start with postgresql:// (or postgres://)")
    source = await SqliteStore.open(sqlite_file, must_exist=True)
    try:
        target = await PostgresStore.connect(database_url)
        try:
            rows = await source.rows()
            await target.put_rows(rows)
        finally:
            await target.close()
    finally:
        await source.close()
    counts = rows.counts()
    _log.info("copied %s from %s", counts, sqlite_file)
    return counts
