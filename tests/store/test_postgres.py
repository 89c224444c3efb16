"""What only the PostgreSQL backend has: migrating a database an older bot left, its column types, a server that
cannot be reached, and a call bounded while another connection holds a row lock (a real server)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from bot.secret import Secret
from bot.store import SCHEMA_VERSION, GuildSettings, Privacy, StoreError, StoreUnavailable, TalkTime, Usage
from bot.store.postgres import MIGRATIONS, PostgresStore, describe_url, is_postgres_url
from tests.store.checks import assert_version_3_guild_kept
from tests.store.pg_server import BIN_DIR_VARIABLE, PostgresServer, PostgresUnavailable


@pytest.fixture
async def url(postgres_server: PostgresServer) -> Secret:
    return await postgres_server.create_database("pg")


async def test_migrates_a_version_1_database_keeping_its_data(url: Secret) -> None:
    old = await asyncpg.connect(url.reveal())
    await old.execute("CREATE TABLE voicebot_schema (version INTEGER NOT NULL)")
    await old.execute("INSERT INTO voicebot_schema VALUES (1)")
    for statement in MIGRATIONS[0]:
        await old.execute(statement)
    await old.execute("INSERT INTO guild_settings (guild_id, voice, transcripts) VALUES (9, 'verse', TRUE)")
    await old.execute("INSERT INTO usage (guild_id, day, seconds, input_tokens) VALUES (9, '2026-11-20', 42, 7)")
    await old.close()
    store = await PostgresStore.connect(url)
    assert await store.schema_version() == SCHEMA_VERSION
    assert await store.get(9) == GuildSettings(voice="verse", transcripts=True, mode="always")
    assert await store.usage(9, "2026-11-20") == Usage(seconds=42.0, input_tokens=7)
    await store.set_privacy(9, 1, no_listen=True)  # the newer tables exist and work
    await store.add_user_usage(9, "2026-11-20", 1, 12.0)
    await store.close()
    again = await PostgresStore.connect(url)  # and a second open does not migrate again
    assert await again.opted_out(9) == {1: Privacy(no_listen=True)}
    assert await again.top_talkers(9, "2026-11-01") == [TalkTime(1, 12.0)]
    await again.close()


async def test_migrates_a_version_3_database_to_turn_detection_with_its_defaults(url: Secret) -> None:
    old = await asyncpg.connect(url.reveal())
    await old.execute("CREATE TABLE voicebot_schema (version INTEGER NOT NULL)")
    await old.execute("INSERT INTO voicebot_schema VALUES (3)")
    for statement in (statement for migration in MIGRATIONS[:3] for statement in migration):
        await old.execute(statement)
    await old.execute("INSERT INTO guild_settings (guild_id, voice, silence_ms) VALUES (9, 'verse', 800)")
    await old.execute("INSERT INTO user_privacy (guild_id, user_id, no_listen) VALUES (9, 1, TRUE)")
    await old.close()
    store = await PostgresStore.connect(url)
    await assert_version_3_guild_kept(store)
    await store.close()


async def test_only_ids_numbers_and_flags_are_stored_about_users(url: Secret) -> None:
    store = await PostgresStore.connect(url)
    await store.close()
    db = await asyncpg.connect(url.reveal())
    for table in ("user_usage", "user_privacy"):
        rows = await db.fetch(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1", table
        )
        types = {r["data_type"] for r in rows if r["column_name"] != "day"}
        assert types <= {"bigint", "double precision", "boolean"}, (table, types)
    await db.close()


async def test_an_unreachable_server_is_a_clear_error_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    url = Secret(f"postgresql://postgres:very-secret-pw@/voicebot?host={postgres_server.socket_dir}/nowhere")
    with pytest.raises(StoreError, match="cannot open the settings store postgresql://postgres:\\*\\*\\*@") as caught:
        await PostgresStore.connect(url, open_timeout_s=10)
    assert "very-secret-pw" not in str(caught.value)
    assert describe_url(url.reveal()).startswith("postgresql://postgres:***@/voicebot")
    assert is_postgres_url("postgres://x/y") and not is_postgres_url("sqlite:///x")


async def test_a_call_held_up_by_another_connection_fails_within_its_bound(url: Secret) -> None:
    store = await PostgresStore.connect(url, call_timeout_s=0.3)
    await store.update(1, {"voice": "ash"})
    other = await asyncpg.connect(url.reveal())
    holding = other.transaction()
    await holding.start()
    await other.execute("SELECT * FROM guild_settings WHERE guild_id = 1 FOR UPDATE")  # another process's lock
    with pytest.raises(StoreUnavailable, match=r"did not answer within 0.3 s \(saving settings\)"):
        await store.update(1, {"voice": "cedar"})
    assert (await store.get(1)).voice == "ash"  # reads do not wait for the lock
    await holding.rollback()
    await other.close()
    assert (await store.update(1, {"voice": "cedar"})).voice == "cedar"  # the pool recovered
    await store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.get(1)


def test_without_the_binaries_the_test_server_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(BIN_DIR_VARIABLE, str(tmp_path))
    with pytest.raises(PostgresUnavailable, match=f"no initdb, pg_ctl and postgres in {tmp_path}"):
        PostgresServer().start()
