"""Command line: ``python -m bot`` (or ``voicebot``) runs the bot; ``simulate`` tries a persona without Discord;
``fake-server`` runs the local Realtime-compatible server on its own."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from bot import texts
from bot.config import Config, ConfigError, RealtimeConfig, load_config
from bot.secret import Secret

if TYPE_CHECKING:
    from bot.realtime.simulate import SimulationOptions

EXIT_CONFIG = 2
DEFAULT_ENV_FILE = Path(".env")
DEFAULT_FAKE_SERVER_PORT = 8765
#: ``--speed`` above this streams faster than any server's VAD can follow in a meaningful way.
MAX_SPEED = 100.0


def _fail_config(error: ConfigError, heading: str = texts.BOT_CONFIG_PROBLEMS) -> int:
    print(heading, file=sys.stderr)
    print(error, file=sys.stderr)
    return EXIT_CONFIG


def _env_file(args: argparse.Namespace) -> Path:
    given: Path | None = getattr(args, "env_file", None)
    return DEFAULT_ENV_FILE if given is None else given


async def _run_bot(config: Config, supervisor_pid: int | None = None) -> int:
    from bot.app import VoiceBot, use_discord_endpoints
    from bot.ops.service import serve
    from bot.ops.store_timing import timed_store
    from bot.persona.library import PersonaLibrary
    from bot.session.wiring import GuildSessionFactory
    from bot.store import StoreError
    from bot.store.opening import open_store

    assert config.discord_token is not None
    try:
        store = timed_store(await open_store(config.database_url, config.data_dir))
    except (StoreError, OSError) as error:
        print(f"The settings store cannot be opened: {error}", file=sys.stderr)
        return EXIT_CONFIG
    use_discord_endpoints(config.discord_api_url, config.discord_gateway_url)
    personas = PersonaLibrary(config.data_dir / "personas", config.persona_file)
    bot = VoiceBot(config, store=store, personas=personas, session_factory=GuildSessionFactory(config, store, personas))
    async with bot:  # closes the bot (sessions, store, HTTP) whatever happens
        return await serve(
            bot,
            config.discord_token.reveal(),
            shutdown_deadline_s=config.shutdown_deadline_s,
            metrics_port=config.metrics_port,
            api_url=config.discord_api_url or "https://discord.com/api",
            supervisor_pid=supervisor_pid,
        )


def _run_cluster(config: Config, processes: int, env_file: Path | None) -> int:
    from bot.ops.supervisor import Supervisor, cluster_children

    children = cluster_children(
        processes=processes,
        shard_ids=config.shard_ids,
        shard_count=config.shard_count,
        metrics_port=config.metrics_port,
        env_file=env_file,
    )
    supervisor = Supervisor(children, child_deadline_s=config.shutdown_deadline_s)
    return asyncio.run(supervisor.run())


def _process_count(args: argparse.Namespace, config: Config) -> int:
    """``--processes`` (default: the cores), never more than the shards this host runs."""
    wanted = args.processes if args.processes is not None else os.cpu_count() or 1
    if config.shard_ids is not None:
        wanted = min(wanted, len(config.shard_ids))
    return max(1, wanted)


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call on the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    return stop


def _cmd_run(args: argparse.Namespace) -> int:
    from bot.ops.stop import stop_before_start

    stop_before_start()
    given_env_file: Path | None = getattr(args, "env_file", None)
    try:
        config = load_config(env_file=_env_file(args))
    except ConfigError as error:
        return _fail_config(error)
    from bot.logging_setup import setup_logging

    processes = _process_count(args, config)
    setup_logging(
        config.log_level,
        config.secrets(),
        log_format=config.log_format,
        shard_ids=config.shard_ids,
        shard_count=config.shard_count,
    )
    if processes > 1:
        return _run_cluster(config, processes, given_env_file)
    return asyncio.run(_run_bot(config, args.supervisor_pid))


def _cmd_simulate(args: argparse.Namespace) -> int:
    from bot.realtime.simulate import SimulationOptions, run_simulation

    realtime: RealtimeConfig | None = None
    secrets: list[Secret] = []
    log_level = "WARNING"
    try:
        config = load_config(env_file=_env_file(args), require_discord=False)
        realtime = config.realtime
        log_level, secrets = config.log_level, config.secrets()
    except ConfigError as error:
        if args.url is None and not args.offline:  # without --url the configured provider is needed
            return _fail_config(error, texts.SIMULATE_CONFIG_PROBLEMS)
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
        pace=args.speed,
        answer_timeout_s=args.timeout,
    )
    if args.offline:
        return asyncio.run(_simulate_offline(options, args.dialect or "ga"))
    return asyncio.run(run_simulation(options, print))


def _cmd_store_migrate(args: argparse.Namespace) -> int:
    from bot.config import load_database_url
    from bot.store import StoreError
    from bot.store.opening import copy_sqlite_to_postgres

    try:
        database_url = load_database_url(env_file=_env_file(args))
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


async def _simulate_offline(options: SimulationOptions, dialect: str) -> int:
    """``simulate`` against the local server, started on a free loopback port for this one run."""
    from bot.fakeserver.model import StandInModel
    from bot.fakeserver.server import RealtimeServer
    from bot.fakeserver.voice import Voice
    from bot.realtime.simulate import run_simulation

    voice = Voice.find()
    async with RealtimeServer(StandInModel(voice), dialect=dialect) as server:
        note = texts.offline_server(server.url, voice.describe())
        return await run_simulation(replace(options, url=server.url, api_key=None, server_note=note), print)


def _cmd_fake_server(args: argparse.Namespace) -> int:
    return asyncio.run(_fake_server(args.host, args.port, args.api_key, args.dialect))


async def _fake_server(host: str, port: int, api_key: str | None, dialect: str) -> int:
    from bot.fakeserver.model import StandInModel
    from bot.fakeserver.server import RealtimeServer
    from bot.fakeserver.voice import Voice
    from bot.logging_setup import setup_logging

    setup_logging("WARNING", [Secret(api_key)] if api_key else [])
    voice = Voice.find()

    def say(line: str) -> None:
        print(line, flush=True)

    server = RealtimeServer(StandInModel(voice, say), host=host, port=port, dialect=dialect, api_key=api_key)
    try:
        await server.start()
    except OSError as error:
        print(texts.cannot_listen(host, port, error.strerror or str(error)), file=sys.stderr)
        return EXIT_CONFIG
    stop = _stop_on_signals()
    try:
        print(texts.fake_server_listening(server.url, dialect, voice.describe(), api_key is not None), flush=True)
        await stop.wait()
    finally:
        await server.close()
    return 0


# -- arguments -----------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(what: str, maximum: float = math.inf) -> Callable[[str], float]:
    """A parser of finite numbers in (0, maximum]; ``what`` describes them for the error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 < value <= maximum):
            raise argparse.ArgumentTypeError(texts.bad_number(text, what))
        return value

    return parse


def _positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1 is needed (got {text!r})")
    return int(text)


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 0 to 65535 (got {text!r})")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="voicebot",
        description=texts.CLI_DESCRIPTION,
        epilog=texts.CLI_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    settings = _Parser(add_help=False)
    settings.add_argument(
        "--env-file", type=Path, default=argparse.SUPPRESS, metavar="FILE", help="settings file (default: .env)"
    )
    parser.add_argument("--env-file", type=Path, default=None, metavar="FILE", help="settings file (default: .env)")
    parser.set_defaults(handler=_cmd_run, processes=None, supervisor_pid=None)
    sub = parser.add_subparsers(dest="command", title="commands", metavar="{run,simulate,fake-server,store}")
    run = sub.add_parser("run", parents=[settings], help="run the Discord bot (the default)")
    run.add_argument(
        "--processes",
        type=_positive_int,
        metavar="N",
        help="bot processes sharing this host's shards under one supervisor (default: the number of cores)",
    )
    run.add_argument("--supervisor-pid", type=_positive_int, help=argparse.SUPPRESS)  # set by the supervisor
    run.set_defaults(handler=_cmd_run)
    sim = sub.add_parser(
        "simulate",
        parents=[settings],
        help="speak one WAV to the persona through a Realtime server, without Discord",
        description=(
            "Streams IN.wav at real-time pace (or --speed times faster) through the bot's audio path to a Realtime "
            "server and writes the spoken answer. With --offline the server is a local one that ships with the "
            "bot: no account or key is needed."
        ),
    )
    sim.add_argument("--input", type=Path, required=True, metavar="IN.wav", help="the question (any WAV)")
    sim.add_argument("--output", type=Path, required=True, metavar="OUT.wav", help="where to write the answer")
    where = sim.add_mutually_exclusive_group()
    where.add_argument("--url", help="a Realtime ws:// or wss:// URL (default: the provider configured in .env)")
    where.add_argument(
        "--offline", action="store_true", help="talk to a local server that ships with the bot (no account needed)"
    )
    sim.add_argument("--api-key", help="the key for --url (default: the configured key)")
    sim.add_argument("--dialect", choices=("ga", "beta"), help="the server's protocol dialect (default: ga)")
    sim.add_argument("--persona", type=Path, metavar="FILE", help="a persona TOML file (default: the built-in one)")
    sim.add_argument(
        "--speed",
        type=_positive(f"a speed is a factor above 0 and at most {MAX_SPEED:g}", MAX_SPEED),
        default=1.0,
        metavar="X",
        help="stream and play X times faster than real time (default: 1, real time)",
    )
    sim.add_argument(
        "--timeout",
        type=_positive("a timeout is a finite number of seconds above 0"),
        default=30.0,
        metavar="S",
        help="longest wait for the answer",
    )
    sim.set_defaults(handler=_cmd_simulate)
    fake = sub.add_parser(
        "fake-server",
        help="run the local Realtime-compatible server on its own (no account needed)",
        description=(
            "Serves the Realtime protocol on a local port: it detects the end of each spoken question, calls "
            "get_your_info with a fixed query, and speaks the answer (espeak-ng when installed, else a tone)."
        ),
    )
    fake.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    fake.add_argument(
        "--port", type=_port, default=DEFAULT_FAKE_SERVER_PORT, metavar="N", help="the port (default: 8765; 0 = any)"
    )
    fake.add_argument("--api-key", help="require this key from clients (default: accept any)")
    fake.add_argument("--dialect", choices=("ga", "beta"), default="ga", help="the protocol dialect (default: ga)")
    fake.set_defaults(handler=_cmd_fake_server)
    store = sub.add_parser("store", help="manage the settings store")
    store_commands = store.add_subparsers(dest="store_command", required=True)
    migrate = store_commands.add_parser(
        "migrate", parents=[settings], help="copy a SQLite store into the database of DATABASE_URL"
    )
    migrate.add_argument("--from", dest="source", type=Path, required=True, metavar="SQLITE_FILE")
    migrate.set_defaults(handler=_cmd_store_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bot`` and the ``voicebot`` script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "offline", False) and args.api_key:
        parser.exit(EXIT_CONFIG, "voicebot simulate: error: --api-key goes with --url, not with --offline\n")
    env_file: Path | None = getattr(args, "env_file", None)
    if env_file is not None and not env_file.is_file():
        print(texts.missing_env_file(str(env_file)), file=sys.stderr)
        return EXIT_CONFIG
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
