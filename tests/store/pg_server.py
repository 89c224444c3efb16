"""A real, throw-away PostgreSQL server for the tests and benchmarks: ``initdb`` + ``pg_ctl`` in a temporary
directory, listening on a unix socket only, torn down afterwards.

The binaries are found on ``PATH`` or in ``/usr/lib/postgresql/*/bin`` (Debian's ``postgresql`` package, which
``scripts/test`` installs). PostgreSQL refuses to run as root, so as root the server runs as ``nobody`` (the
temporary directory is handed to it); the tests connect as the database superuser ``postgres`` (trust
authentication, socket only, so nothing outside this machine's users can reach it).
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from bot.secret import Secret

SERVER_USER = "nobody"
START_TIMEOUT_S = 60


def in_ci() -> bool:
    """Whether this runs in CI (``CI=true``), where a test that needs PostgreSQL and cannot get it fails."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be started here; the message says why."""


#: Set to a directory to use the PostgreSQL binaries there (and only there).
BIN_DIR_VARIABLE = "VOICEBOT_PG_BIN_DIR"
_BINARIES = ("initdb", "pg_ctl", "postgres")


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres`` (the newest version), or None."""
    chosen = os.environ.get(BIN_DIR_VARIABLE)
    if chosen:
        directory = Path(chosen)
        return directory if all((directory / name).exists() for name in _BINARIES) else None
    on_path = shutil.which("initdb")
    if on_path is not None and shutil.which("pg_ctl") is not None:
        directory = Path(on_path).resolve().parent
        if (directory / "pg_ctl").exists() and (directory / "postgres").exists():
            return directory
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in candidates:
        if all((directory / name).exists() for name in _BINARIES):
            return directory
    return None


class PostgresServer:
    """One server; :meth:`start` it, :meth:`create_database` per test, :meth:`stop` at the end."""

    def __init__(self) -> None:
        self._bin_dir = find_bin_dir()
        self._root: Path | None = None
        self._names = itertools.count(1)

    @property
    def socket_dir(self) -> Path:
        assert self._root is not None
        return self._root / "socket"

    def _as_server_user(self, *command: str) -> list[str]:
        if os.geteuid() != 0:
            return list(command)
        return ["runuser", "-u", SERVER_USER, "--", *command]

    def start(self) -> None:
        """Create the cluster and start the server (raises :class:`PostgresUnavailable` with the reason)."""
        if self._bin_dir is None:
            where = os.environ.get(BIN_DIR_VARIABLE) or "PATH or /usr/lib/postgresql/*/bin"
            raise PostgresUnavailable(
                f"PostgreSQL is not installed (no initdb, pg_ctl and postgres in {where}); "
                "scripts/test installs Debian's postgresql package"
            )
        self._root = Path(tempfile.mkdtemp(prefix="voicebot-pg-"))
        data, socket = self._root / "data", self._root / "socket"
        socket.mkdir()
        if os.geteuid() == 0:
            server = pwd.getpwnam(SERVER_USER)
            for path in (self._root, socket):
                os.chown(path, server.pw_uid, server.pw_gid)
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        initdb = self._bin_dir / "initdb"
        pg_ctl = self._bin_dir / "pg_ctl"
        steps = [
            self._as_server_user(
                str(initdb), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"
            ),
            self._as_server_user(
                str(pg_ctl),
                "-D",
                str(data),
                "-l",
                str(self._root / "server.log"),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-o",
                f"-k {socket} -c listen_addresses='' -c fsync=off -c max_connections=200",
                "start",
            ),
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, env=env, timeout=START_TIMEOUT_S + 30)
            if result.returncode != 0:
                log = self._root / "server.log"
                detail = (result.stderr or result.stdout).strip()
                if log.exists():
                    detail += "\n" + log.read_text(errors="replace")[-2000:]
                self.stop()
                raise PostgresUnavailable(f"{Path(step[-1]).name} failed: {detail}")

    def url(self, database: str = "postgres") -> Secret:
        """The ``postgresql://`` URL of ``database`` on this server (through its socket)."""
        return Secret(f"postgresql://postgres@/{database}?host={self.socket_dir}")

    async def create_database(self, prefix: str = "test") -> Secret:
        """A fresh, empty database; returns its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        assert re.fullmatch(r"\w+", name)
        admin = await asyncpg.connect(self.url().reveal())
        try:
            await admin.execute(f"CREATE DATABASE {name}")
        finally:
            await admin.close()
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (immediately: the data is thrown away) and delete its directory."""
        if self._root is None:
            return
        if self._bin_dir is not None and (self._root / "data" / "postmaster.pid").exists():
            pg_ctl = str(self._bin_dir / "pg_ctl")
            subprocess.run(
                self._as_server_user(pg_ctl, "-D", str(self._root / "data"), "-m", "immediate", "-w", "stop"),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self._root, ignore_errors=True)
        self._root = None
