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
        "authentication_error",
        "insufficient_quota",
        "quota_exceeded",
        "model_not_found",
        "DeploymentNotFound",
        "deployment_not_found",
        "account_deactivated",
        "organization_deactivated",
        "billing_hard_limit_reached",
        "unauthorized",
        "forbidden",
        "permission_denied",
        "insufficient_permissions",
        "access_terminated",
    }
)
#: Server error types after which reconnecting cannot help, whatever the code.
FATAL_ERROR_TYPES = frozenset({"authentication_error", "permission_error", "insufficient_quota"})
#: WebSocket close code 1008 (policy violation) and the application range 4000-4999 (4001: bad key, ...) end the
#: session for good; other closes (1006 network drop, 1011 server error, 1012 restart, ...) are retried.
POLICY_VIOLATION_CLOSE = 1008
FATAL_CLOSE_CODES = range(4000, 5000)


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
        self.retryable = not is_fatal_error(code, error_type)


class SessionClosed(RealtimeError):
    """The session was closed (by :meth:`close` or after a fatal error) while something waited on it."""


def is_fatal_code(code: str | None) -> bool:
    """Whether a server error code means reconnecting cannot help."""
    return code in FATAL_ERROR_CODES


def is_fatal_error(code: str | None, error_type: str | None) -> bool:
    """Whether an ``error`` event (its code or its type: auth, permission, quota) means reconnecting cannot help."""
    return code in FATAL_ERROR_CODES or error_type in FATAL_ERROR_TYPES


def close_error(code: int | None, reason: str) -> RealtimeError:
    """The error for a WebSocket close with ``code`` and ``reason`` (the reason already redacted).

    4000-4999 and 1008 are the server refusing us (a bad key, a policy): fatal. Anything else is a network fault
    or a server hiccup (1006, 1011, 1012...): retryable.
    """
    said = f": {reason}" if reason else ""
    if code is not None and (code == POLICY_VIOLATION_CLOSE or code in FATAL_CLOSE_CODES):
        return RejectedError(f"the Realtime server closed the session (close code {code}{said})", code=str(code))
    return ConnectionFailed(f"the Realtime connection dropped (close code {code}{said})")


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
