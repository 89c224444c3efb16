"""Several bot processes on one store, on both backends: real processes starting at the same moment on a fresh
store (one creates the schema, none fails), and what one writes another reads."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from bot.store import SCHEMA_VERSION, Privacy, StoreError
from tests.store.conftest import StoreLocation
from tests.store.opener import DAY, SHARED_GUILD, member_of

ROOT = Path(__file__).resolve().parents[2]
PROCESS_TIMEOUT_S = 120


async def start_together(location: StoreLocation, guild_ids: list[int], go_file: Path) -> list[tuple[int, str]]:
    """Run one opener process per guild id, released at once; returns each one's exit code and output."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.store.opener",
            location.backend,
            location.describe(),
            str(go_file),
            str(guild_id),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for guild_id in guild_ids
    ]
    for process in processes:  # every interpreter is up and polling before any may open the store
        assert process.stdout is not None
        assert await asyncio.wait_for(process.stdout.readline(), PROCESS_TIMEOUT_S) == b"ready\n"
    await asyncio.to_thread(go_file.touch)
    outputs = await asyncio.wait_for(
        asyncio.gather(*(process.communicate() for process in processes)), PROCESS_TIMEOUT_S
    )
    return [(p.returncode or 0, out.decode()) for p, (out, _) in zip(processes, outputs, strict=True)]


@pytest.mark.parametrize("count", [2, 3])
async def test_processes_starting_at_once_on_a_fresh_store_all_succeed(
    location: StoreLocation, tmp_path: Path, count: int
) -> None:
    guild_ids = [10 + n for n in range(count)]
    results = await start_together(location, guild_ids, tmp_path / "go")
    assert results == [(0, f"schema {SCHEMA_VERSION}\n")] * count
    # Another process (this one) reads what each of them wrote.
    store = await location.open()
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        for guild_id in guild_ids:
            settings = await store.get(guild_id)
            assert (settings.voice, settings.silence_ms) == ("ash", 600 + guild_id)
            assert await store.opted_out(guild_id) == {member_of(guild_id): Privacy(no_listen=True)}
        assert (await store.usage(SHARED_GUILD, DAY)).seconds == float(count)  # no increment lost
    finally:
        await store.close()


async def test_an_open_store_sees_another_process_write(location: StoreLocation, tmp_path: Path) -> None:
    """A running bot reads a member's opt-out saved by another bot process a moment ago (nothing is cached)."""
    store = await location.open()
    try:
        assert await store.opted_out(20) == {}
        assert await start_together(location, [20], tmp_path / "go") == [(0, f"schema {SCHEMA_VERSION}\n")]
        assert await store.opted_out(20) == {member_of(20): Privacy(no_listen=True)}
        assert (await store.get(20)).silence_ms == 620
    finally:
        await store.close()


async def test_a_process_refuses_a_store_from_a_newer_bot(location: StoreLocation) -> None:
    store = await location.open()
    await store.close()
    await bump_schema_version(location, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="newer than this bot"):
        await location.open()


async def bump_schema_version(location: StoreLocation, version: int) -> None:
    """Mark the store as written by a newer bot, directly in the database."""
    if location.path is not None:
        file = sqlite3.connect(location.path)
        file.execute(f"PRAGMA user_version = {version}")
        file.close()
        return
    assert location.url is not None
    database = await asyncpg.connect(location.url.reveal())
    await database.execute("UPDATE voicebot_schema SET version = $1", version)
    await database.close()
