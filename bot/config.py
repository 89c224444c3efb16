"""Configuration from the environment and an optional ``.env`` file, validated once at start-up.

Every problem found is reported at once, one clear sentence each, so a new user fixes their ``.env`` in one go.
Secrets are held as :class:`~bot.secret.Secret` and never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlparse

from dotenv.parser import parse_stream

from bot.secret import Secret

Provider = Literal["openai", "azure", "custom"]
Dialect = Literal["ga", "beta"]

PROVIDERS: tuple[Provider, ...] = ("openai", "azure", "custom")
DIALECTS: tuple[Dialect, ...] = ("ga", "beta")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Not scheduled for shutdown (the openai SDK marks gpt-realtime and gpt-realtime-mini for 2027-01-20).
DEFAULT_MODEL = "gpt-realtime-1.5"
#: Not scheduled for shutdown (whisper-1 and the gpt-4o(-mini)-transcribe family shut down 2027-02-26).
DEFAULT_TRANSCRIPTION_MODEL = "gpt-transcribe"
DEFAULT_VOICE = "marin"
LOG_FORMATS = ("text", "json")
#: How the bot's voice is encoded: the answer's own 24 kHz mono (default), or 48 kHz stereo as discord.py does.
VOICE_ENCODINGS = ("24k-mono", "48k-stereo")
DEFAULT_SHUTDOWN_DEADLINE_S = 10.0
#: A plain decimal number: what ``float`` accepts minus ``nan``, ``inf``, ``1_000`` and non-ASCII digits.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
DISCORD_APPS_URL = "https://discord.com/developers/applications"
OPENAI_KEYS_URL = "https://platform.openai.com/api-keys"


class ConfigError(Exception):
    """The configuration has one or more problems; ``problems`` holds one sentence for each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))

    def __str__(self) -> str:
        return "\n".join(f"- {p}" for p in self.problems)


@dataclass(frozen=True, slots=True)
class RealtimeConfig:
    """Where and how to reach a Realtime server."""

    provider: Provider = "openai"
    api_key: Secret | None = None
    url: str | None = None
    azure_endpoint: str | None = None
    azure_deployment: str | None = None
    azure_api_version: str | None = None
    model: str = DEFAULT_MODEL
    voice: str = DEFAULT_VOICE
    dialect: Dialect | None = None
    transcription_model: str = DEFAULT_TRANSCRIPTION_MODEL
    #: Azure Entra ID sign-in: a bearer token, or a command printing a fresh one (run before each connection).
    azure_ad_token: Secret | None = None
    azure_ad_token_command: str | None = None

    @property
    def azure_preview(self) -> bool:
        """Azure with a preview ``api-version`` (``2025-04-01-preview``): the deprecated preview protocol."""
        version = self.azure_api_version or ""
        return self.provider == "azure" and "preview" in version.lower()

    @property
    def effective_dialect(self) -> Dialect:
        """The dialect to speak: the explicit one, else beta for an Azure preview api-version, else GA."""
        if self.dialect is not None:
            return self.dialect
        return "beta" if self.azure_preview else "ga"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration of one bot process."""

    discord_token: Secret | None
    realtime: RealtimeConfig
    persona_file: Path | None = None
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    dev_guild_id: int | None = None
    idle_leave_s: float = 60.0
    max_session_min: float = 60.0
    daily_budget_min: float = 0.0  # 0 = no daily budget
    manager_role: str | None = None
    #: The shards this host runs, of ``shard_count`` in all (None: every shard; None count: Discord's advice).
    shard_ids: tuple[int, ...] | None = None
    shard_count: int | None = None
    #: Serve ``/healthz`` and ``/metrics`` on this port (None: no HTTP server).
    metrics_port: int | None = None
    log_format: str = "text"
    #: Live voice sessions one bot process holds; a further ``/voice join`` is refused (0 = no limit).
    max_sessions: int = 0
    #: Longest clean shutdown after SIGTERM before the process stops anyway.
    shutdown_deadline_s: float = DEFAULT_SHUTDOWN_DEADLINE_S
    #: Discord's REST API and gateway (None: Discord's own); a REST proxy, or a local stand-in in tests.
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None
    #: ``postgresql://user:password@host/db``: the shared PostgreSQL store (None: the SQLite file in ``data_dir``).
    database_url: Secret | None = None
    #: ``24k-mono`` (the answer as the model sends it, a quarter of the encoding CPU) or ``48k-stereo``.
    voice_encoding: str = "24k-mono"

    def secrets(self) -> list[Secret]:
        """Every secret this configuration holds, for the logging redaction filter (the database password too)."""
        held = (self.discord_token, self.realtime.api_key, self.realtime.azure_ad_token, self.database_url)
        found = [s for s in held if s]
        if self.database_url:
            password = urllib.parse.urlsplit(self.database_url.reveal()).password
            if password:
                found.append(Secret(urllib.parse.unquote(password)))
        return found


def parse_env_file(text: str, name: str = ".env") -> tuple[dict[str, str], list[str]]:
    """Parse ``.env`` text with python-dotenv; returns the values and a problem sentence for each unreadable line.

    python-dotenv handles what shells and other tools accept: ``export KEY=value``, single and double quotes (with
    escapes in double quotes, and values over several lines), ``# comments`` after a value, and spaces around ``=``.
    A UTF-8 byte order mark is dropped; a ``KEY`` without ``=`` sets nothing; ``${VAR}`` is kept as written (a key
    may contain ``$``).
    """
    values: dict[str, str] = {}
    problems: list[str] = []
    for binding in parse_stream(io.StringIO(text.removeprefix("\ufeff"))):
        if binding.error:
            line = binding.original.line
            problems.append(
                f"{name} line {line} is not KEY=value: fix or remove it (quote a value that has spaces, # or quotes)."
            )
        elif binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values, problems


def read_env_file(env_file: Path) -> tuple[dict[str, str], list[str]]:
    """The values of ``env_file`` (none when it does not exist) and a problem sentence for each one it has."""
    if not env_file.is_file():
        return {}, []
    try:
        text = env_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return {}, [f"{env_file} is not UTF-8 text: save it as UTF-8."]
    except OSError as error:
        return {}, [f"{env_file} cannot be read: {error.strerror or error}."]
    return parse_env_file(text, str(env_file))


def read_environment(
    environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> tuple[dict[str, str], list[str]]:
    """The effective settings (the ``.env`` file's values overridden by the process environment) and the
    problems of the ``.env`` file."""
    merged, problems = read_env_file(env_file) if env_file is not None else ({}, [])
    merged.update(os.environ if environ is None else environ)
    return merged, problems


class _Reader:
    """Reads typed values from a mapping, collecting a problem sentence for each bad one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.env.get(key, "").strip()
        return value or default

    def secret(self, key: str) -> Secret | None:
        value = self.text(key)
        return Secret(value) if value else None

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        """A finite decimal number written in ASCII (``nan``, ``inf``, ``1e400`` and ``٣`` are refused)."""
        value = self.text(key)
        if value is None:
            return default
        number = float(value) if _DECIMAL.fullmatch(value) else math.nan
        if not math.isfinite(number):
            self.problems.append(f"{key} must be a plain number such as 60 or 2.5 (got {value!r}).")
            return default
        if number < minimum:
            self.problems.append(f"{key} must be at least {minimum:g} (got {value!r}).")
            return default
        return number

    def whole(self, key: str, default: int | None, *, minimum: int = 0, maximum: int | None = None) -> int | None:
        """A whole number in ASCII digits (``²`` and ``٣`` pass ``str.isdigit`` but are refused here)."""
        value = self.text(key)
        if value is None:
            return default
        if not is_ascii_digits(value):
            self.problems.append(f"{key} must be a whole number, digits 0-9 only (got {value!r}).")
            return default
        number = int(value)
        if number < minimum or (maximum is not None and number > maximum):
            limits = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            self.problems.append(f"{key} must be {limits} (got {value!r}).")
            return default
        return number

    def url(self, key: str, schemes: tuple[str, ...]) -> str | None:
        value = self.text(key)
        if value is not None:
            _check_url(self, key, value, schemes)
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str | None) -> str | None:
        value = self.text(key)
        if value is None:
            return default
        if value.lower() not in options:
            self.problems.append(f"{key} must be one of {', '.join(options)} (got {value!r}).")
            return default
        return value.lower()


def is_ascii_digits(text: str) -> bool:
    """Whether ``text`` is one or more of the digits 0-9 (``str.isdigit`` also accepts ``²`` and ``٣``)."""
    return text.isascii() and text.isdigit()


def _check_url(reader: _Reader, key: str, url: str, schemes: tuple[str, ...]) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in schemes or not parsed.netloc:
        reader.problems.append(f"{key} must be a {' or '.join(s + '://' for s in schemes)} URL (got {url!r}).")


def _realtime_config(reader: _Reader) -> RealtimeConfig:
    provider = cast(Provider, reader.choice("REALTIME_PROVIDER", PROVIDERS, "openai"))
    dialect = cast(Dialect | None, reader.choice("REALTIME_DIALECT", DIALECTS, None))
    model = reader.text("REALTIME_MODEL", DEFAULT_MODEL) or DEFAULT_MODEL
    transcription = reader.text("REALTIME_TRANSCRIPTION_MODEL") or DEFAULT_TRANSCRIPTION_MODEL
    voice = reader.text("REALTIME_VOICE", DEFAULT_VOICE) or DEFAULT_VOICE
    if provider == "openai":
        key = reader.secret("OPENAI_API_KEY")
        if key is None:
            reader.problems.append(
                f"OPENAI_API_KEY is not set: create a key at {OPENAI_KEYS_URL} and put it in .env "
                "(or set REALTIME_PROVIDER=azure or custom)."
            )
        return RealtimeConfig(
            provider=provider,
            api_key=key,
            model=model,
            voice=voice,
            dialect=dialect,
            transcription_model=transcription,
        )
    if provider == "azure":
        endpoint = reader.text("AZURE_OPENAI_ENDPOINT")
        key = reader.secret("AZURE_OPENAI_API_KEY")
        ad_token = reader.secret("AZURE_OPENAI_AD_TOKEN")
        ad_token_command = reader.text("AZURE_OPENAI_AD_TOKEN_COMMAND")
        deployment = reader.text("AZURE_OPENAI_DEPLOYMENT")
        if endpoint is None:
            reader.problems.append(
                "AZURE_OPENAI_ENDPOINT is not set: use your resource's endpoint, "
                "e.g. https://my-resource.openai.azure.com."
            )
        else:
            _check_url(reader, "AZURE_OPENAI_ENDPOINT", endpoint, ("https", "http"))
        if key is None and ad_token is None and ad_token_command is None:
            reader.problems.append(
                "AZURE_OPENAI_API_KEY is not set: copy Key 1 from your Azure OpenAI resource (Keys and Endpoint), "
                "or sign in with Entra ID through AZURE_OPENAI_AD_TOKEN or AZURE_OPENAI_AD_TOKEN_COMMAND."
            )
        if deployment is None:
            reader.problems.append("AZURE_OPENAI_DEPLOYMENT is not set: name the deployment of your realtime model.")
        return RealtimeConfig(
            provider=provider,
            api_key=key,
            azure_endpoint=endpoint.rstrip("/") if endpoint else None,
            azure_deployment=deployment,
            azure_api_version=reader.text("AZURE_OPENAI_API_VERSION"),
            model=deployment or model,
            voice=voice,
            dialect=dialect,
            transcription_model=transcription,
            azure_ad_token=ad_token,
            azure_ad_token_command=ad_token_command,
        )
    url = reader.text("REALTIME_URL")
    if url is None:
        reader.problems.append(
            "REALTIME_URL is not set: with REALTIME_PROVIDER=custom, give the ws:// or wss:// URL of the server."
        )
    else:
        _check_url(reader, "REALTIME_URL", url, ("ws", "wss"))
    return RealtimeConfig(
        provider=provider,
        api_key=reader.secret("REALTIME_API_KEY"),
        url=url,
        model=model,
        voice=voice,
        dialect=dialect,
        transcription_model=transcription,
    )


def load_config(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = Path(".env"),
    *,
    require_discord: bool = True,
) -> Config:
    """Read and validate the configuration.

    Args:
        environ: the environment to read (the process environment when None).
        env_file: an optional ``.env`` file whose values the environment overrides.
        require_discord: whether ``DISCORD_TOKEN`` is required (not for ``simulate``).

    Raises:
        ConfigError: with one sentence for each problem found; never containing a secret value.
    """
    settings, env_file_problems = read_environment(environ, env_file)
    reader = _Reader(settings)
    reader.problems += env_file_problems
    token = reader.secret("DISCORD_TOKEN")
    if token is None and require_discord:
        reader.problems.append(
            f"DISCORD_TOKEN is not set: create a bot at {DISCORD_APPS_URL} (Bot → Reset Token) "
            "and put the token in .env."
        )
    realtime = _realtime_config(reader)

    persona_text = reader.text("PERSONA_FILE")
    persona_file = Path(persona_text).expanduser() if persona_text else None
    if persona_file is not None and not persona_file.is_file():
        reader.problems.append(f"PERSONA_FILE {str(persona_file)!r} does not exist or is not a file.")

    dev_guild_text = reader.text("DEV_GUILD_ID")
    dev_guild_id: int | None = None
    if dev_guild_text is not None:
        if is_ascii_digits(dev_guild_text):
            dev_guild_id = int(dev_guild_text)
        else:
            reader.problems.append(f"DEV_GUILD_ID must be a server id, digits 0-9 only (got {dev_guild_text!r}).")

    shard_ids, shard_count = _shards(reader)
    log_level = (reader.choice("LOG_LEVEL", tuple(s.lower() for s in LOG_LEVELS), "info") or "info").upper()
    metrics_port = reader.whole("METRICS_PORT", None, minimum=1, maximum=65535)
    config = Config(
        discord_token=token,
        realtime=realtime,
        persona_file=persona_file,
        data_dir=Path(reader.text("DATA_DIR", "./data") or "./data").expanduser(),
        log_level=log_level,
        dev_guild_id=dev_guild_id,
        idle_leave_s=reader.number("IDLE_LEAVE_S", 60.0),
        max_session_min=reader.number("MAX_SESSION_MIN", 60.0, minimum=1.0),
        daily_budget_min=reader.number("DAILY_BUDGET_MIN", 0.0),
        manager_role=reader.text("MANAGER_ROLE"),
        shard_ids=shard_ids,
        shard_count=shard_count,
        metrics_port=metrics_port,
        log_format=reader.choice("LOG_FORMAT", LOG_FORMATS, "text") or "text",
        max_sessions=reader.whole("MAX_SESSIONS", 0) or 0,
        shutdown_deadline_s=reader.number("SHUTDOWN_DEADLINE_S", DEFAULT_SHUTDOWN_DEADLINE_S, minimum=1.0),
        discord_api_url=reader.url("DISCORD_API_URL", ("https", "http")),
        discord_gateway_url=reader.url("DISCORD_GATEWAY_URL", ("wss", "ws")),
        database_url=_database_url(reader),
        voice_encoding=reader.choice("VOICE_ENCODING", VOICE_ENCODINGS, "24k-mono") or "24k-mono",
    )
    if reader.problems:
        raise ConfigError(reader.problems)
    logging.getLogger(__name__).debug("configuration loaded: provider=%s", realtime.provider)
    return config


def load_database_url(environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> Secret | None:
    """Only ``DATABASE_URL`` (for ``voicebot store``, which needs no Discord or Realtime settings).

    Raises:
        ConfigError: it is set but not a PostgreSQL URL.
    """
    settings, env_file_problems = read_environment(environ, env_file)
    reader = _Reader(settings)
    reader.problems += env_file_problems
    url = _database_url(reader)
    if reader.problems:
        raise ConfigError(reader.problems)
    return url


def _database_url(reader: _Reader) -> Secret | None:
    """``DATABASE_URL``: a ``postgresql://`` URL, held as a secret (it may carry a password)."""
    url = reader.secret("DATABASE_URL")
    if url is not None and urllib.parse.urlsplit(url.reveal()).scheme not in ("postgresql", "postgres"):
        reader.problems.append(
            "DATABASE_URL must be a PostgreSQL URL such as postgresql://user:password@host:5432/voicebot "
            "(leave it unset to keep the SQLite file in DATA_DIR)."
        )
        return None
    return url


def parse_shard_ids(text: str) -> list[int] | None:
    """``0-3``, ``0,2,5`` or ``0-3,8``: the shard ids in order, or None when ``text`` is not such a list."""
    ids: list[int] = []
    for part in text.replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if not is_ascii_digits(first) or (dash and not is_ascii_digits(last)):
            return None
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            return None
        ids.extend(range(low, high + 1))
    return ids if len(set(ids)) == len(ids) else None


def _shards(reader: _Reader) -> tuple[tuple[int, ...] | None, int | None]:
    """``SHARD_COUNT`` and the shards this host runs: ``SHARD_IDS`` (a range or list), or the older single
    ``SHARD_ID``; every id below ``SHARD_COUNT``. Ids without a count are an error; a count alone means every shard."""
    ids_text, id_text = reader.text("SHARD_IDS"), reader.text("SHARD_ID")
    count = reader.whole("SHARD_COUNT", None, minimum=1)
    if ids_text is not None and id_text is not None:
        reader.problems.append("Set SHARD_IDS or SHARD_ID, not both (SHARD_IDS=2 is the same as SHARD_ID=2).")
        return None, None
    text, key = (ids_text, "SHARD_IDS") if ids_text is not None else (id_text, "SHARD_ID")
    if text is None:
        return (tuple(range(count)) if count is not None else None), count
    ids = parse_shard_ids(text) if key == "SHARD_IDS" else ([int(text)] if is_ascii_digits(text) else None)
    if ids is None:
        example = "0-3, or 0,2,5" if key == "SHARD_IDS" else "0"
        reader.problems.append(f"{key} must be shard numbers such as {example}, each once (got {text!r}).")
        return None, None
    if count is None:
        reader.problems.append(
            f"{key} needs SHARD_COUNT, the number of shards of the whole bot (e.g. {key}={text} and SHARD_COUNT=8)."
        )
        return None, None
    if max(ids) >= count:
        reader.problems.append(f"{key} must be between 0 and SHARD_COUNT - 1 (got {text!r} of {count}).")
        return None, None
    return tuple(ids), count
