"""Logging for the bot process: discord.py's handler and format, or one JSON object per line, with secret redaction
on every handler either way.

JSON lines carry ``guild_id`` and ``shard_id`` where known. The guild comes from, in order: ``extra={"guild_id": …}``,
the :data:`guild_context` of the task that logged (set for everything a guild's session does, its tasks included),
or the ``"guild %s: …"`` convention of the bot's own log lines (which threads use too). The shard follows from the
guild (Discord's ``(guild_id >> 22) % shard_count``), or is the process's only shard.

discord.py's gateway retries (while Discord cannot be reached) are one line each, not a traceback every few seconds.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable, Sequence

import discord.utils

from bot.secret import RedactingFilter, Secret

#: The guild the running task works for (None: no guild); tasks created while it is set inherit it.
guild_context: contextvars.ContextVar[int | None] = contextvars.ContextVar("guild_context", default=None)


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord sends ``guild_id``'s events to."""
    return (guild_id >> 22) % shard_count


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ``guild_id`` and ``shard_id`` when known, and the
    traceback as text under ``exception``."""

    def __init__(self, shard_ids: Sequence[int] | None = None, shard_count: int | None = None) -> None:
        super().__init__()
        self.set_shards(shard_ids, shard_count)

    def set_shards(self, shard_ids: Sequence[int] | None, shard_count: int | None) -> None:
        self._shard_ids = tuple(shard_ids) if shard_ids is not None else None
        self._shard_count = shard_count

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        guild_id = guild_of(record)
        if guild_id is not None:
            entry["guild_id"] = guild_id
        shard_id = self._shard_of(guild_id)
        if shard_id is not None:
            entry["shard_id"] = shard_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)

    def _shard_of(self, guild_id: int | None) -> int | None:
        if guild_id is not None and self._shard_count:
            return shard_of(guild_id, self._shard_count)
        if self._shard_ids is not None and len(self._shard_ids) == 1:
            return self._shard_ids[0]
        return None


class OneLineRetries(logging.Filter):
    """discord.py logs a whole traceback each time it retries the gateway (every few seconds while Discord cannot
    be reached): keep the retry's line and the error's last line, which say all there is to say."""

    RETRY_MESSAGES = ("Failed to connect for shard_id", "Attempting a reconnect in")

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and isinstance(record.msg, str) and record.msg.startswith(self.RETRY_MESSAGES):
            record.msg = f"{record.getMessage()} ({type(error).__name__}: {' '.join(str(error).split())})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def note_shards(shard_ids: Sequence[int], shard_count: int | None) -> None:
    """Tell the JSON log lines which shards this process runs, once Discord has said (no settings asked it)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            handler.formatter.set_shards(shard_ids, shard_count)


def guild_of(record: logging.LogRecord) -> int | None:
    """The guild a log record is about, if any (see the module docstring for where it is found)."""
    explicit = getattr(record, "guild_id", None)
    if isinstance(explicit, int):
        return explicit
    current = guild_context.get()
    if current is not None:
        return current
    args = record.args
    if isinstance(record.msg, str) and record.msg.startswith("guild %s") and isinstance(args, tuple) and args:
        first = args[0]
        if isinstance(first, int) and not isinstance(first, bool):
            return first
    return None


def setup_logging(
    level: str,
    secrets: Iterable[Secret],
    *,
    log_format: str = "text",
    shard_ids: Sequence[int] | None = None,
    shard_count: int | None = None,
) -> None:
    """Configure the root logger (discord.py's text format, or ``json``) and redact ``secrets`` from every line."""
    numeric_level = logging.getLevelName(level.upper())
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter(shard_ids, shard_count))
        root = logging.getLogger()
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)
        root.setLevel(numeric_level)
    else:
        discord.utils.setup_logging(level=numeric_level, root=True)
    redactor = RedactingFilter(secrets)
    for installed in logging.getLogger().handlers:
        installed.addFilter(redactor)
    for name in ("discord.shard", "discord.client"):
        retries = logging.getLogger(name)
        if not any(isinstance(f, OneLineRetries) for f in retries.filters):
            retries.addFilter(OneLineRetries())
