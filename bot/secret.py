"""Secrets that cannot leak: a masked string type and a logging filter that redacts known secret values."""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "***"


class Secret:
    """A secret string (token, API key) whose ``repr``, ``str`` and format all give ``***``.

    The value is only reachable through :meth:`reveal`, so it cannot slip into an f-string, a log line,
    an exception message or a dataclass repr by accident.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        """The secret value, for the one place that must send it (an HTTP header, discord.py's login)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def redact(text: str, secrets: Iterable[Secret | str]) -> str:
    """``text`` with every occurrence of each secret value replaced by ``***``."""
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if len(value) >= 4:  # masking one or two characters would mangle ordinary text and hide nothing
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that removes known secret values from every record, arguments and tracebacks included.

    Installed on the root handlers at start-up, it is the last line of defence behind :class:`Secret`: even a
    library that logs a request header or a URL with a key in it cannot print the key.
    """

    def __init__(self, secrets: Iterable[Secret]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        cleaned = redact(message, self._secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            cleaned_exc = redact(formatted, self._secrets)
            if cleaned_exc != formatted:
                record.msg = f"{record.msg}\n{cleaned_exc}"
                record.exc_info = None
                record.exc_text = None
        return True
