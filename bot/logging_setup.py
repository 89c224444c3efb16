"""Logging for the bot process: discord.py's handler and format, plus secret redaction on every handler."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import discord.utils

from bot.secret import RedactingFilter, Secret


def setup_logging(level: str, secrets: Iterable[Secret]) -> None:
    """Configure the root logger like discord.py does and redact ``secrets`` from every line it writes."""
    discord.utils.setup_logging(level=logging.getLevelName(level.upper()), root=True)
    redactor = RedactingFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
