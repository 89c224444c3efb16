"""A fresh bearer token from a command (Azure Entra ID sign-in), fetched before each Realtime connection.

``AZURE_OPENAI_AD_TOKEN_COMMAND`` names a command printing an access token, e.g.
``az account get-access-token --resource https://cognitiveservices.azure.com --query accessToken -o tsv``.
Entra tokens expire within hours; running the command per connection keeps reconnects and renewals signed in.
The token is never logged: a failure says the exit status only.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex

from bot.realtime.errors import ConnectionFailed, RejectedError

#: The longest wait for the token command.
TOKEN_COMMAND_TIMEOUT_S = 30.0


async def fetch_token(command: str, timeout_s: float = TOKEN_COMMAND_TIMEOUT_S) -> str:
    """Run ``command`` and return the token it prints (its output's last non-empty line).

    Raises:
        RejectedError: the command cannot be run or printed nothing (fix the configuration).
        ConnectionFailed: it failed or timed out (retried like a network fault).
    """
    try:
        argv = shlex.split(command)
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
    except (OSError, ValueError) as exc:
        raise RejectedError(f"cannot run AZURE_OPENAI_AD_TOKEN_COMMAND ({type(exc).__name__})") from None
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise ConnectionFailed(f"AZURE_OPENAI_AD_TOKEN_COMMAND gave no token within {timeout_s:g} s") from None
    if process.returncode != 0:
        raise ConnectionFailed(f"AZURE_OPENAI_AD_TOKEN_COMMAND failed (exit status {process.returncode})")
    lines = [line.strip() for line in stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        raise RejectedError("AZURE_OPENAI_AD_TOKEN_COMMAND printed no token")
    return lines[-1]
