"""Log lines: discord.py's text format or one JSON object per line, with ``guild_id`` and ``shard_id`` where known,
and secrets redacted in both formats (tracebacks included)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from bot.logging_setup import JsonFormatter, guild_context, note_shards, setup_logging, shard_of
from bot.secret import Secret

TOKEN = "MTIzNDU2.discord-token-never-logged"
GUILD = 1_234_567_890_123_456_789


@pytest.fixture
def root_logging() -> Iterator[io.StringIO]:
    """The root logger as set up by each test, written to a buffer; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    yield buffer
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def capture(buffer: io.StringIO) -> None:
    """Point the handler set-up installed at ``buffer`` (it writes to stderr); pytest's own are left alone."""
    installed = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert len(installed) == 1
    installed[0].setStream(buffer)


def test_json_lines_carry_the_guild_and_its_shard_and_redact_secrets(root_logging: io.StringIO) -> None:
    setup_logging("INFO", [Secret(TOKEN)], log_format="json", shard_ids=[0, 1, 2, 3], shard_count=4)
    capture(root_logging)
    log = logging.getLogger("bot.test")
    log.info("guild %s: session started in channel %s", GUILD, 10)  # the bot's "guild %s:" convention
    log.info("no guild here, token %s", TOKEN)
    log.info("explicit", extra={"guild_id": 42})
    try:
        raise RuntimeError(f"bad header Authorization: Bot {TOKEN}")
    except RuntimeError:
        log.exception("request failed")
    entries = [json.loads(line) for line in root_logging.getvalue().splitlines()]
    assert entries[0]["guild_id"] == GUILD and entries[0]["shard_id"] == shard_of(GUILD, 4) == (GUILD >> 22) % 4
    assert entries[0]["message"] == f"guild {GUILD}: session started in channel 10"
    assert entries[0]["level"] == "INFO" and entries[0]["logger"] == "bot.test"
    assert "guild_id" not in entries[1] and "shard_id" not in entries[1]  # four shards: no guild, no shard
    assert entries[1]["message"] == "no guild here, token ***"
    assert entries[2]["guild_id"] == 42
    assert "RuntimeError" in entries[3]["message"]
    assert TOKEN not in root_logging.getvalue()


async def test_a_guilds_tasks_log_with_its_id_and_a_one_shard_process_names_its_shard(
    root_logging: io.StringIO,
) -> None:
    setup_logging("INFO", [], log_format="json")
    capture(root_logging)
    note_shards([3], 8)  # Discord said: this process runs shard 3 of 8
    log = logging.getLogger("bot.test")

    async def session_work() -> None:
        log.info("a line from a task the session started")

    token = guild_context.set(GUILD)
    try:
        task = asyncio.create_task(session_work())  # inherits the guild, as a session's tasks do
    finally:
        guild_context.reset(token)
    await task
    log.info("process line")
    first, second = (json.loads(line) for line in root_logging.getvalue().splitlines())
    assert first["guild_id"] == GUILD and first["shard_id"] == shard_of(GUILD, 8)
    assert "guild_id" not in second and second["shard_id"] == 3


def test_text_format_redacts_too(root_logging: io.StringIO) -> None:
    setup_logging("INFO", [Secret(TOKEN)], log_format="text")
    capture(root_logging)
    logging.getLogger("bot.test").warning("token is %s", TOKEN)
    text = root_logging.getvalue()
    assert "token is ***" in text and TOKEN not in text
    assert not text.lstrip().startswith("{")


def test_json_formatter_keeps_tracebacks_as_text() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, exc_info=sys.exc_info())
    entry = json.loads(formatter.format(record))
    assert entry["message"] == "failed" and "ValueError: boom" in entry["exception"]


def test_gateway_retries_are_one_line_each(root_logging: io.StringIO) -> None:
    setup_logging("INFO", [], log_format="text")
    capture(root_logging)
    try:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    except ConnectionRefusedError:
        logging.getLogger("discord.shard").exception("Failed to connect for shard_id: %s. Retrying...", 0)
        logging.getLogger("bot.test").exception("something else")
    lines = root_logging.getvalue().splitlines()
    assert lines[0].endswith(
        "Failed to connect for shard_id: 0. Retrying... (ConnectionRefusedError: [Errno 111] Connect call failed "
        "('127.0.0.1', 9))"
    )
    assert lines[1].endswith("something else") and "Traceback (most recent call last):" in lines[2]  # others keep it
