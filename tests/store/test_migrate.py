"""``voicebot store migrate --from SQLITE_FILE``: a real SQLite store copied into a real PostgreSQL database by the
command line, as an operator runs it (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.secret import Secret
from bot.store import GuildSettings, Privacy, StoreRows, Usage
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests.store.pg_server import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pg-pass-must-not-leak-9876"


def empty_settings(directory: Path) -> Path:
    """An empty settings file (``--env-file`` must name one that exists), so the developer's ``.env`` stays out."""
    path = directory / "empty.env"
    path.write_text("", encoding="utf-8")
    return path


def migrate(*args: str, database_url: str | None, settings: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "DATABASE_"))}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "bot", "--env-file", str(settings), "store", "migrate", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def with_password(url: Secret) -> str:
    """The URL with a password in it (the test server trusts its socket, so any password is accepted)."""
    return url.reveal().replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")


async def filled_sqlite(path: Path) -> StoreRows:
    store = await SqliteStore.open(path)
    await store.update(1, {"voice": "ash", "mode": "name", "daily_budget_min": 30, "turn_detection": "semantic_vad"})
    await store.update(2, {"transcripts": True, "transcript_channel_id": 555})
    await store.add_usage(1, "2026-11-29", seconds=60, input_tokens=10, output_tokens=20, cost_usd=0.5)
    await store.add_usage(1, "2026-11-30", seconds=30)
    await store.add_user_usage(1, "2026-11-30", 10, 12.5)
    await store.add_user_usage(1, "2026-11-30", 11, 3.0)
    await store.add_user_usage(2, "2026-11-30", 10, 1.0)
    await store.set_privacy(1, 11, no_listen=True)
    await store.put_persona(1, "pirate", 'name = "Captain Rowan"\nage = 41\nstyle = "Gruff."\n', max_count=25)
    rows = await store.rows()
    await store.close()
    return rows


async def test_migrate_copies_every_row_reports_counts_and_is_idempotent(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    source = tmp_path / "voicebot.sqlite3"
    expected = await filled_sqlite(source)
    url = await postgres_server.create_database("migrate")
    report = (
        "Copied into PostgreSQL: guild_settings 2 rows, usage 2 rows, user_usage 3 rows, user_privacy 1 rows, "
        "guild_personas 1 rows\n"
    )
    for _ in range(2):  # the second run changes nothing (no usage counted twice)
        result = migrate("--from", str(source), database_url=with_password(url), settings=empty_settings(tmp_path))
        assert (result.returncode, result.stdout, result.stderr) == (0, report, "")
        target = await PostgresStore.connect(url)
        assert await target.rows() == expected
        await target.close()
    target = await PostgresStore.connect(url)
    first = await target.get(1)
    assert (first.mode, first.turn_detection) == ("name", "semantic_vad") and (await target.get(2)) == GuildSettings(
        transcripts=True, transcript_channel_id=555
    )
    assert await target.usage(1, "2026-11-01", "2026-11-30") == Usage(90.0, 10, 20, 0.5)
    assert await target.opted_out(1) == {11: Privacy(no_listen=True)}
    await target.close()


async def test_migrate_keeps_rows_only_in_postgres_and_overwrites_the_copied_ones(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    source = tmp_path / "voicebot.sqlite3"
    await filled_sqlite(source)
    url = await postgres_server.create_database("migrate")
    target = await PostgresStore.connect(url)
    await target.update(1, {"voice": "verse"})  # the file's value wins for a guild in both
    await target.update(3, {"voice": "sage"})  # a guild only PostgreSQL knows stays
    result = migrate("--from", str(source), database_url=url.reveal(), settings=empty_settings(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (await target.get(1)).voice == "ash" and (await target.get(3)).voice == "sage"
    await target.close()


@pytest.mark.parametrize(
    ("source", "database", "code", "message"),
    [
        ("missing.sqlite3", "good", 1, "The store was not copied: there is no SQLite store at"),
        ("voicebot.sqlite3", None, 2, "Set DATABASE_URL=postgresql://"),
        ("voicebot.sqlite3", "absent", 1, "The store was not copied: cannot open the settings store postgresql://"),
    ],
)
async def test_migrate_failures_are_one_clear_line_without_the_password(
    tmp_path: Path, postgres_server: PostgresServer, source: str, database: str | None, code: int, message: str
) -> None:
    await filled_sqlite(tmp_path / "voicebot.sqlite3")
    url = None
    if database == "good":
        url = with_password(await postgres_server.create_database("migrate"))
    elif database == "absent":
        url = with_password(postgres_server.url("no_such_database"))
    result = migrate("--from", str(tmp_path / source), database_url=url, settings=empty_settings(tmp_path))
    assert result.returncode == code
    assert message in result.stderr and "Traceback" not in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_the_bot_refuses_to_start_on_an_unreachable_database_without_showing_its_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "DATABASE_", "REALTIME_"))}
    env |= {
        "DISCORD_TOKEN": "discord-token-abcdef",
        "OPENAI_API_KEY": "sk-abcdef",
        "DATABASE_URL": f"postgresql://bot:{PASSWORD}@/voicebot?host={tmp_path}/no-server-here",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--env-file", str(empty_settings(tmp_path)), "run", "--processes", "1"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "The settings store cannot be opened: cannot open the settings store postgresql://bot:***@" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr and "Traceback" not in result.stderr
