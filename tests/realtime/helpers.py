"""Shared pieces of the Realtime I/O tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bot.config import Dialect, RealtimeConfig
from bot.persona import default_persona, persona_instructions, persona_tools
from bot.realtime import outputs as out
from bot.realtime.client_events import SessionSettings
from bot.realtime.driver import RealtimeSession
from bot.realtime.endpoint import Endpoint, endpoint_for
from bot.realtime.retry import RetryPolicy
from bot.secret import Secret
from bot.tools import ToolRegistry
from tests.realtime.server import UNIT_S, RealtimeTestServer

FAST_RETRY = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)

#: A recorded gpt-realtime ``response.done`` usage with cached audio: input text 59, audio 73, cached 64 (all audio);
#: the output side (18 text, 152 audio) chosen so the old per-modality sum gives the $0.0124 an issue reported.
CACHED_AUDIO_USAGE: dict[str, Any] = {
    "input_tokens": 132,
    "output_tokens": 170,
    "input_token_details": {
        "text_tokens": 59,
        "audio_tokens": 73,
        "cached_tokens": 64,
        "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 64},
    },
    "output_token_details": {"text_tokens": 18, "audio_tokens": 152},
}


def endpoint(server: RealtimeTestServer, key: str = "test-key", dialect: Dialect | None = None) -> Endpoint:
    chosen = dialect or ("beta" if server.dialect == "beta" else "ga")
    config = RealtimeConfig(provider="custom", url=server.url, api_key=Secret(key), dialect=chosen)
    return endpoint_for(config)


def persona_settings() -> tuple[SessionSettings, ToolRegistry]:
    tools = persona_tools(default_persona())
    settings = SessionSettings(instructions=persona_instructions(default_persona()), tools=tuple(tools.schemas()))
    return settings, tools


def session_for(server: RealtimeTestServer, tools: ToolRegistry | None = None, **options: Any) -> RealtimeSession:
    settings, persona_registry = persona_settings()
    options.setdefault("policy", FAST_RETRY)
    return RealtimeSession(endpoint(server), settings, tools or persona_registry, **options)


async def collect_until(
    session: RealtimeSession, done: Callable[[list[out.Output]], bool], timeout_s: float = 2 * UNIT_S
) -> list[out.Output]:
    """Outputs of ``session`` until ``done(outputs)`` holds (or the session ends)."""
    seen: list[out.Output] = []

    async def run() -> None:
        async for event in session.events():
            seen.append(event)
            if done(seen):
                return

    await asyncio.wait_for(run(), timeout_s)
    return seen


def of_type(events: list[out.Output], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def has(kind: type[Any], count: int = 1) -> Callable[[list[out.Output]], bool]:
    return lambda events: len(of_type(events, kind)) >= count
