"""Command line: ``python -m bot`` (or ``voicebot``) runs the bot; ``simulate`` tries a persona without Discord."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import Config, ConfigError, RealtimeConfig, load_config
from bot.secret import Secret

EXIT_CONFIG = 2


def _fail_config(error: ConfigError) -> int:
    print("The bot cannot start; fix these settings (environment or .env):", file=sys.stderr)
    print(error, file=sys.stderr)
    return EXIT_CONFIG


async def _run_bot(config: Config) -> int:
    import discord

    from bot.app import VoiceBot
    from bot.persona.library import PersonaLibrary
    from bot.session.wiring import GuildSessionFactory
    from bot.store import StoreError
    from bot.store.opening import open_store

    assert config.discord_token is not None
    try:
        store = await open_store(config.database_url, config.data_dir)
    except (StoreError, OSError) as error:
        print(f"The settings store cannot be opened: {error}", file=sys.stderr)
        return EXIT_CONFIG
    personas = PersonaLibrary(config.data_dir / "personas", config.persona_file)
    bot = VoiceBot(config, store=store, personas=personas, session_factory=GuildSessionFactory(config, store, personas))
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


def _cmd_simulate(args: argparse.Namespace) -> int:
    from bot.realtime.simulate import SimulationOptions, run_simulation

    realtime: RealtimeConfig | None = None
    secrets: list[Secret] = []
    log_level = "WARNING"
    try:
        config = load_config(env_file=args.env_file, require_discord=False)
        realtime = config.realtime
        log_level, secrets = config.log_level, config.secrets()
    except ConfigError as error:
        if args.url is None:  # without --url the configured provider is needed
            return _fail_config(error)
    from bot.logging_setup import setup_logging

    api_key = Secret(args.api_key) if args.api_key else None
    setup_logging(log_level, [*secrets, *([api_key] if api_key else [])])
    options = SimulationOptions(
        input_path=args.input,
        output_path=args.output,
        url=args.url,
        api_key=api_key,
        dialect=args.dialect,
        persona_file=args.persona,
        realtime=realtime,
        answer_timeout_s=args.timeout,
    )
    return asyncio.run(run_simulation(options, print))


def _cmd_store_migrate(args: argparse.Namespace) -> int:
    from bot.config import load_database_url
    from bot.store import StoreError
    from bot.store.opening import copy_sqlite_to_postgres

    try:
        database_url = load_database_url(env_file=args.env_file)
    except ConfigError as error:
        return _fail_config(error)
    if database_url is None:
        print("Set DATABASE_URL=postgresql://... to the database to copy the store into.", file=sys.stderr)
        return EXIT_CONFIG
    try:
        counts = asyncio.run(copy_sqlite_to_postgres(args.source, database_url))
    except StoreError as error:
        print(f"The store was not copied: {error}", file=sys.stderr)
        return 1
    print("Copied into PostgreSQL: " + ", ".join(f"{table} {rows} rows" for table, rows in counts.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicebot", description=__doc__)
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="settings file (default: .env)")
    parser.set_defaults(handler=_cmd_run)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the Discord bot (the default)")
    run.set_defaults(handler=_cmd_run)
    sim = sub.add_parser(
        "simulate",
        help="speak one WAV to the persona through a Realtime server, without Discord",
        description="Streams IN.wav at real-time pace through the bot's audio path and writes the spoken answer.",
    )
    sim.add_argument("--input", type=Path, required=True, metavar="IN.wav", help="the question (any WAV)")
    sim.add_argument("--output", type=Path, required=True, metavar="OUT.wav", help="where to write the answer")
    sim.add_argument("--url", help="a Realtime WebSocket URL (default: the configured provider)")
    sim.add_argument("--api-key", help="the key for --url (default: the configured key)")
    sim.add_argument("--dialect", choices=("ga", "beta"), help="the server's protocol dialect (default: ga)")
    sim.add_argument("--persona", type=Path, metavar="FILE", help="a persona TOML file (default: the built-in one)")
    sim.add_argument("--timeout", type=float, default=30.0, metavar="S", help="longest wait for the answer")
    sim.set_defaults(handler=_cmd_simulate)
    store = sub.add_parser("store", help="manage the settings store")
    store_commands = store.add_subparsers(dest="store_command", required=True)
    migrate = store_commands.add_parser("migrate", help="copy a SQLite store into the database of DATABASE_URL")
    migrate.add_argument("--from", dest="source", type=Path, required=True, metavar="SQLITE_FILE")
    migrate.set_defaults(handler=_cmd_store_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bot`` and the ``voicebot`` script; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
