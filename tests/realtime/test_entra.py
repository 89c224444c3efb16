"""Azure Entra ID sign-in with a token command: a fresh bearer token per connection, never shown."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from bot.realtime import outputs as out
from bot.realtime.driver import RealtimeSession
from bot.realtime.endpoint import Endpoint
from bot.realtime.errors import ConnectionFailed
from tests.realtime.conftest import ServerFactory
from tests.realtime.helpers import FAST_RETRY, collect_until, has, persona_settings
from tests.realtime.server import Peer, idle

TOKEN = "eyJ-entra-token-0123456789"


def token_command(tmp_path: Path, script: str) -> str:
    path = tmp_path / "token.py"
    path.write_text(script, encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


async def test_each_connection_signs_in_with_a_fresh_token_from_the_command(
    realtime_server: ServerFactory, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    command = token_command(
        tmp_path,
        f"from pathlib import Path\np = Path({str(counter)!r})\n"
        "p.write_text(str(int(p.read_text()) + 1) if p.exists() else '1')\n"
        f"print('some banner')\nprint({TOKEN!r})\n",
    )

    async def drop(peer: Peer) -> None:
        await peer.configured.wait()
        await peer.drop()

    async with realtime_server([drop, idle], api_key=TOKEN) as server:
        settings, tools = persona_settings()
        endpoint = Endpoint(server.url, "ga", 1800.0, {}, None, command)
        session = RealtimeSession(endpoint, settings, tools, policy=FAST_RETRY)
        await session.start()
        await collect_until(session, has(out.SessionReady, 2))
        await session.close()
    assert [peer.headers["Authorization"] for peer in server.peers] == [f"Bearer {TOKEN}"] * 2
    assert counter.read_text() == "2"  # the command ran before each connection


async def test_a_failing_token_command_fails_start_with_its_exit_status_only(
    realtime_server: ServerFactory, tmp_path: Path
) -> None:
    command = token_command(tmp_path, f"import sys\nprint({TOKEN!r})\nsys.exit(3)\n")
    async with realtime_server(idle) as server:
        settings, tools = persona_settings()
        session = RealtimeSession(Endpoint(server.url, "ga", 1800.0, {}, None, command), settings, tools)
        with pytest.raises(ConnectionFailed) as failure:
            await session.start()
    assert str(failure.value) == "AZURE_OPENAI_AD_TOKEN_COMMAND failed (exit status 3)"
    assert server.peers == []
