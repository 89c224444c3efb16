"""Another process holding a store file's SQLite write lock: a locked disk, as far as the bot can tell."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from bot.store.sqlite import DB_FILENAME, SqliteStore

LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
db.execute("UPDATE guild_settings SET voice = voice")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


class Locker:
    """A second process holding the file's write lock until :meth:`release`."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def release(self) -> None:
        assert self.process.stdin is not None
        if self.process.returncode is None:
            self.process.stdin.write(b"\n")
            await self.process.stdin.drain()
            assert await self.process.wait() == 0


@contextlib.asynccontextmanager
async def locked_store_file(directory: Path) -> AsyncIterator[tuple[Path, Locker]]:
    """A migrated store file in ``directory``, write-locked by another process until released (or the block ends)."""
    path = directory / DB_FILENAME
    await (await SqliteStore.open(path)).close()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCKER, str(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 30) == b"locked\n"
    locker = Locker(process)
    try:
        yield path, locker
    finally:
        await locker.release()
