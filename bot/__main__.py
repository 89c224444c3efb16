"""Command line: ``python -m bot`` (or ``voicebot``) runs the bot; ``simulate`` tries a persona without Discord."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import Config, ConfigError, load_config

EXIT_CONFIG = 2


def _fail_config(error: ConfigError) -> int:
    print("The bot cannot start; fix these settings (environment or .env):", file=sys.stderr)
    print(error, file=sys.stderr)
    return EXIT_CONFIG


async def _run_bot(config: Config) -> int:
    import discord

    from bot.app import VoiceBot

    assert config.discord_token is not None
    bot = VoiceBot(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    async with bot:
        runner = asyncio.create_task(bot.start(config.discord_token.reveal()))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not runner.done():
            await bot.close()  # leaves voice channels, closes sessions, flushes the store
        stopper.cancel()
        try:
            await runner
        except discord.LoginFailure:
            print(
                "Discord rejected DISCORD_TOKEN: reset the token in the Developer Portal (Bot tab).",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        except discord.PrivilegedIntentsRequired:
            print("Discord refused the requested intents; the bot needs no privileged intent.", file=sys.stderr)
            return EXIT_CONFIG
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(env_file=args.env_file)
    except ConfigError as error:
        return _fail_config(error)
    from bot.logging_setup import setup_logging

    setup_logging(config.log_level, config.secrets())
    return asyncio.run(_run_bot(config))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicebot", description=__doc__)
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="settings file (default: .env)")
    parser.set_defaults(handler=_cmd_run)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the Discord bot (the default)")
    run.set_defaults(handler=_cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bot`` and the ``voicebot`` script; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
