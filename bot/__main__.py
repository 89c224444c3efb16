"""Command line: ``python -m bot`` (or ``voicebot``) runs the bot; ``simulate`` tries a persona without Discord."""

from __future__ import annotations

import argparse
import asyncio
import os
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


async def _run_bot(config: Config, supervisor_pid: int | None = None) -> int:
    from bot.app import VoiceBot, use_discord_endpoints
    from bot.ops.service import serve
    from bot.ops.store_timing import timed_store
    from bot.persona.library import PersonaLibrary
    from bot.session.wiring import GuildSessionFactory
    from bot.store import SettingsStore, StoreError

    assert config.discord_token is not None
    try:
        store = timed_store(SettingsStore.in_data_dir(config.data_dir))
    except (StoreError, OSError) as error:
        print(f"The settings store in {config.data_dir} cannot be opened: {error}", file=sys.stderr)
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


def _run_cluster(config: Config, processes: int, env_file: Path) -> int:
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


def _cmd_run(args: argparse.Namespace) -> int:
    from bot.ops.stop import stop_before_start

    stop_before_start()
    try:
        config = load_config(env_file=args.env_file)
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
        return _run_cluster(config, processes, args.env_file)
    return asyncio.run(_run_bot(config, args.supervisor_pid))


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


def _positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1 is needed (got {text!r})")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicebot", description=__doc__)
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="settings file (default: .env)")
    parser.set_defaults(handler=_cmd_run)
    sub = parser.add_subparsers(dest="command")
    parser.set_defaults(processes=None, supervisor_pid=None)
    run = sub.add_parser("run", help="run the Discord bot (the default)")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bot`` and the ``voicebot`` script; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
