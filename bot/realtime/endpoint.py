"""Where to connect and how to authenticate, per provider; and the dialect to speak there."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlparse, urlunparse

from bot.config import RealtimeConfig
from bot.realtime.client_events import Dialect
from bot.secret import Secret

_log = logging.getLogger(__name__)
_warned: set[str] = set()

OPENAI_URL = "wss://api.openai.com/v1/realtime"
#: Longest session each provider allows (OpenAI 60 min, Azure 30 min); unknown servers are treated like Azure.
OPENAI_MAX_SESSION_S = 60 * 60.0
AZURE_MAX_SESSION_S = 30 * 60.0
_SECRET_HEADERS = frozenset({"authorization", "api-key"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A Realtime WebSocket endpoint. ``headers`` may hold the key: never log them (``repr`` hides them)."""

    url: str
    dialect: Dialect
    max_session_s: float
    headers: dict[str, str] = field(repr=False, default_factory=dict)
    #: The model (or Azure deployment) asked for, to price usage until the server names its own.
    model: str | None = None
    #: A command printing a fresh bearer token, run before each connection (Azure Entra ID sign-in).
    token_command: str | None = None

    def secrets(self) -> tuple[str, ...]:
        """The key or token values the headers carry, to redact from anything the server says."""
        values = (v.split(" ")[-1] for k, v in self.headers.items() if k.lower() in _SECRET_HEADERS)
        return tuple(v for v in values if len(v) >= 4)

    def describe(self) -> str:
        """The URL without its query, safe to log."""
        parsed = urlparse(self.url)
        return urlunparse(parsed._replace(query="", fragment=""))


def _ws_base(https_url: str) -> str:
    parsed = urlparse(https_url.rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parsed.scheme, parsed.scheme)
    return urlunparse(parsed._replace(scheme=scheme))


def endpoint_for(config: RealtimeConfig) -> Endpoint:
    """The endpoint for ``config``.

    Raises:
        ValueError: the configuration lacks what its provider needs (say which, never the key).
    """
    dialect = config.effective_dialect
    key: Secret | None = config.api_key
    headers: dict[str, str] = {}
    if config.provider == "openai":
        if key:
            headers["Authorization"] = f"Bearer {key.reveal()}"
        if dialect == "beta":
            headers["OpenAI-Beta"] = "realtime=v1"
        url = f"{OPENAI_URL}?{urlencode({'model': config.model})}"
        return Endpoint(url, dialect, OPENAI_MAX_SESSION_S, headers, config.model)
    if config.provider == "azure":
        if not config.azure_endpoint or not config.azure_deployment:
            raise ValueError("Azure needs AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT")
        if config.azure_ad_token:
            headers["Authorization"] = f"Bearer {config.azure_ad_token.reveal()}"
        elif key and not config.azure_ad_token_command:
            headers["api-key"] = key.reveal()
        base = _ws_base(config.azure_endpoint)
        if config.azure_preview:
            _warn_once(
                f"AZURE_OPENAI_API_VERSION={config.azure_api_version} selects Azure's preview Realtime protocol, "
                "deprecated since 2026-04-30; leave it empty to use the v1 GA endpoint"
            )
            query = urlencode({"api-version": config.azure_api_version, "deployment": config.azure_deployment})
            url = f"{base}/openai/realtime?{query}"
        else:
            if config.azure_api_version:
                _warn_once(
                    f"AZURE_OPENAI_API_VERSION={config.azure_api_version} is not a preview version; the v1 GA "
                    "endpoint takes none, so it is ignored"
                )
            url = f"{base}/openai/v1/realtime?{urlencode({'model': config.azure_deployment})}"
        command = None if config.azure_ad_token else config.azure_ad_token_command
        return Endpoint(url, dialect, AZURE_MAX_SESSION_S, headers, config.azure_deployment, command)
    if not config.url:
        raise ValueError("a custom Realtime server needs REALTIME_URL")
    if key:
        headers["Authorization"] = f"Bearer {key.reveal()}"
    if dialect == "beta":
        headers["OpenAI-Beta"] = "realtime=v1"
    url = config.url
    parsed = urlparse(url)
    if "model=" not in parsed.query and config.model:
        joined = "&".join(q for q in (parsed.query, f"model={quote(config.model)}") if q)
        url = urlunparse(parsed._replace(query=joined))
    return Endpoint(url, dialect, AZURE_MAX_SESSION_S, headers, config.model)


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        _log.warning("%s", message)
