"""Text that came from a Realtime server, made safe to show: secrets redacted, length bounded, one line.

Every string a server sends (error messages, close reasons, ``status_details``) passes through :func:`shown`
before it reaches a log line, Discord, stdout or a file: a server that echoes the API key back must not get it
posted in a text channel.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from bot.secret import Secret, redact

#: The most characters of server text shown anywhere (logs, posts, stdout).
MAX_SERVER_TEXT_CHARS = 300


def shown(text: str, secrets: Iterable[Secret | str], limit: int = MAX_SERVER_TEXT_CHARS) -> str:
    """``text`` redacted (every secret replaced by ``***``), on one line, cut to ``limit`` characters."""
    one_line = " ".join(redact(text, secrets).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def status_reason(details: Mapping[str, Any] | None) -> str | None:
    """Why a response ended, from ``response.status_details`` (``None`` when it says nothing useful).

    ``{"type": "failed", "error": {"code": "server_error", "message": "..."}}`` gives ``"server_error: ..."``;
    ``{"type": "incomplete", "reason": "max_output_tokens"}`` gives ``"max_output_tokens"``.
    """
    if not isinstance(details, Mapping):
        return None
    error = details.get("error")
    if isinstance(error, Mapping):
        code, message = error.get("code"), error.get("message")
        parts = [p for p in (code, message) if isinstance(p, str) and p]
        if parts:
            return ": ".join(parts)
        try:
            return json.dumps(error)[:MAX_SERVER_TEXT_CHARS]
        except (TypeError, ValueError, RecursionError):
            return None
    reason = details.get("reason")
    return reason if isinstance(reason, str) and reason else None
