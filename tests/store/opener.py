"""A bot process's use of the store, for the multi-process tests: ``python -m tests.store.opener BACKEND LOCATION
GO_FILE GUILD_ID``.

Prints ``ready``, waits until ``GO_FILE`` exists (so several of these open a fresh store at the same moment), opens
the store (creating the schema if it is the first), writes guild ``GUILD_ID``'s settings and one member's opt-out,
adds one second to guild 1's shared usage, and prints the schema version it saw. Exits 2 with the error otherwise.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from bot.secret import Secret
from bot.store import SettingsStore, StoreError
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore

SHARED_GUILD = 1
DAY = "2026-11-30"


def member_of(guild_id: int) -> int:
    return 1000 + guild_id


async def run(backend: str, location: str, guild_id: int) -> int:
    store: SettingsStore
    if backend == "sqlite":
        store = await SqliteStore.open(Path(location))
    else:
        store = await PostgresStore.connect(Secret(location))
    try:
        await store.update(guild_id, {"voice": "ash", "silence_ms": 600 + guild_id})
        await store.set_privacy(guild_id, member_of(guild_id), no_listen=True)
        await store.add_usage(SHARED_GUILD, DAY, seconds=1.0)
        print(f"schema {await store.schema_version()}", flush=True)
    finally:
        await store.close()
    return 0


def main() -> int:
    backend, location, go_file, guild_id = sys.argv[1:5]
    print("ready", flush=True)
    while not Path(go_file).exists():  # poll, to start as close to "go" as possible
        time.sleep(0.001)
    try:
        return asyncio.run(run(backend, location, int(guild_id)))
    except StoreError as error:
        print(f"store error: {error}", flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
