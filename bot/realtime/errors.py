"""The one error tree of the Realtime client.

Every error carries structured data (``code``, ``status``) and says whether retrying can help (``retryable``).
Messages never contain the API key: they are built from status codes and server error codes only.
"""

from __future__ import annotations

#: Server error codes after which reconnecting cannot help (the key, the account or the model is wrong).
FATAL_ERROR_CODES = frozenset(
    {
        "invalid_api_key",
        "invalid_authentication",
        "insufficient_quota",
        "model_not_found",
        "DeploymentNotFound",
        "deployment_not_found",
        "account_deactivated",
        "billing_hard_limit_reached",
        "unauthorized",
    }
)


class RealtimeError(Exception):
    """Base of every error raised by :mod:`bot.realtime`."""

    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class ConnectionFailed(RealtimeError):
    """The socket could not be opened or was dropped (network, timeout, 5xx, 429): retryable."""

    retryable = True


class RejectedError(RealtimeError):
    """The server refused us for good (bad key, no quota, unknown model or deployment): not retryable."""

    retryable = False


class ServerError(RealtimeError):
    """An ``error`` event from the server; ``retryable`` depends on its code."""

    def __init__(self, message: str, *, code: str | None = None, error_type: str | None = None) -> None:
        super().__init__(message, code=code)
        self.error_type = error_type
        self.retryable = code not in FATAL_ERROR_CODES


class SessionClosed(RealtimeError):
    """The session was closed (by :meth:`close` or after a fatal error) while something waited on it."""


def is_fatal_code(code: str | None) -> bool:
    """Whether a server error code means reconnecting cannot help."""
    return code in FATAL_ERROR_CODES


def handshake_error(status: int, body_code: str | None = None) -> RealtimeError:
    """The error for an HTTP status refusing the WebSocket handshake."""
    if status in (401, 403):
        return RejectedError(
            f"the Realtime server rejected the API key (HTTP {status}); check the key in .env",
            code=body_code or "invalid_api_key",
            status=status,
        )
    if status == 404:
        return RejectedError(
            f"the Realtime server does not know this model or deployment (HTTP {status}); check the model name",
            code=body_code or "model_not_found",
            status=status,
        )
    if body_code in FATAL_ERROR_CODES:
        return RejectedError(f"the Realtime server refused the session ({body_code})", code=body_code, status=status)
    return ConnectionFailed(f"the Realtime server answered HTTP {status}", code=body_code, status=status)
