"""The import rules of the rooms under ``bot/``: each room imports only rooms at its layer or below.

Layers, bottom up:

1. **pure** -- audio DSP (``bot.audio``), persona and tools (``bot.persona``, ``bot.tools``), the shared-room rules
   (``bot.room``), the store's records and interface (``bot.store``, ``bot.store.records``,
   ``bot.store.interface``), the Realtime protocol core (every ``bot.realtime`` module but its I/O drivers),
   configuration, secrets, user-facing texts, Discord's size limits (``bot.texts.fit``), the session limits
   (``bot.session.limits``) and the Prometheus metrics every room feeds (``bot.ops.metrics``, with the store
   timing). They import no asyncio, discord, websockets or davey, even transitively, and no bot module outside
   this layer.
2. **drivers** -- Discord voice (``bot.voice``), the Realtime drivers, the store's backends (every other
   ``bot.store`` module: they run their work off the event loop), the local Realtime server (``bot.fakeserver``),
   logging set-up, and running the bot as a service (the rest of ``bot.ops``: supervisor, health server, signals,
   loop lag).
3. **session** -- one guild's live conversation (``bot.session``).
4. **shell** -- the bot process (``bot.app``, ``bot.__main__``).
5. **cogs** -- the slash commands.

Besides the layers: ``bot.room`` imports nothing of ``bot.session`` (not even its pure limits), and nothing below the
shell imports ``bot.app``, ``bot.__main__`` or the cogs. Checked statically over every module (imports anywhere in
the module, ``TYPE_CHECKING`` blocks included), and the pure layer also at run time in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IO_LIBRARIES = ("asyncio", "discord", "websockets", "davey")
PURE_PACKAGES = ("bot.audio", "bot.persona", "bot.tools", "bot.room")
PURE_MODULES = (
    "bot", "bot.config", "bot.texts.fit", "bot.secret", "bot.texts", "bot.session", "bot.session.limits",
    "bot.store", "bot.store.records", "bot.store.interface",
    "bot.ops", "bot.ops.metrics", "bot.ops.store_timing",
)  # fmt: skip
#: The only ``bot.realtime`` modules allowed to do I/O; every other one is the sans-I/O core.
REALTIME_DRIVERS = frozenset(
    {"bot.realtime.driver", "bot.realtime.simulate", "bot.realtime.connection", "bot.realtime.entra"}
)
DRIVER_MODULES = ("bot.logging_setup",)
DRIVER_PACKAGES = ("bot.voice", "bot.realtime", "bot.store", "bot.fakeserver", "bot.ops")
SHELL_MODULES = ("bot.app", "bot.__main__")
LAYER_NAMES = ("pure", "drivers", "session", "shell", "cogs")


def module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def modules_in(package: str) -> list[str]:
    """Every module of ``package`` and its sub-packages, the package itself included."""
    directory = ROOT.joinpath(*package.split("."))
    names = []
    for path in sorted(directory.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def pure_modules() -> list[str]:
    names = [m for pkg in PURE_PACKAGES for m in modules_in(pkg)]
    names += [m for m in PURE_MODULES if module_path(m) is not None]
    names += [m for m in modules_in("bot.realtime") if m not in REALTIME_DRIVERS]
    return names


def layer_of(name: str) -> int:
    """The layer index (into :data:`LAYER_NAMES`) of a bot or cogs module."""
    if name == "cogs" or name.startswith("cogs."):
        return 4
    if name in SHELL_MODULES:
        return 3
    if name in pure_modules():
        return 0
    if name.startswith("bot.session"):
        return 2
    if name.startswith(DRIVER_PACKAGES) or name in DRIVER_MODULES:
        return 1
    raise AssertionError(f"{name} is in no layer: add it to one in tests/test_layering.py")


def all_modules() -> list[str]:
    return modules_in("bot") + modules_in("cogs")


def imports_of_source(source: str, name: str, is_package: bool) -> set[str]:
    tree = ast.parse(source)
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imported_names(name: str) -> set[str]:
    path = module_path(name)
    assert path is not None, name
    return imports_of_source(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")


def project_module(imported: str) -> str | None:
    """The bot or cogs module an imported name lives in (``bot.store.GuildSettings`` -> ``bot.store``)."""
    if not imported.startswith(("bot", "cogs")):
        return None
    parts = imported.split(".")
    while parts:
        candidate = ".".join(parts)
        if module_path(candidate) is not None:
            return candidate
        parts.pop()
    return None


def rule_breaks(name: str, imports: set[str]) -> list[str]:
    """The import rules ``name`` breaks by importing ``imports`` (direct imports only)."""
    bad: list[str] = []
    layer = layer_of(name)
    for imported in sorted(imports):
        target = project_module(imported)
        if layer == 0 and any(imported == lib or imported.startswith(lib + ".") for lib in IO_LIBRARIES):
            bad.append(f"{name} (pure) imports {imported}")
        if target is None or target == name:
            continue
        if layer_of(target) > layer and not (name == "bot.app" and target == "cogs"):
            bad.append(f"{name} ({LAYER_NAMES[layer]}) imports {target} ({LAYER_NAMES[layer_of(target)]})")
        if name.startswith("bot.room") and target.startswith("bot.session"):
            bad.append(f"{name} (room) imports {target} (session)")
        if layer < 3 and (target in SHELL_MODULES or target.startswith("cogs")):
            bad.append(f"{name} imports {target} upwards")
    return bad


def transitive_io_imports(name: str, seen: set[str]) -> list[str]:
    if name in seen:
        return []
    seen.add(name)
    bad: list[str] = []
    for imported in sorted(imported_names(name)):
        if any(imported == lib or imported.startswith(lib + ".") for lib in IO_LIBRARIES):
            bad.append(f"{name} imports {imported}")
        target = project_module(imported)
        if target is not None and target != name:
            bad += transitive_io_imports(target, seen)
    return bad


def test_every_module_is_in_a_layer() -> None:
    layers = {name: layer_of(name) for name in all_modules()}
    assert layers["bot.config"] == 0 and layers["bot.audio.formats"] == 0 and layers["bot.room.listening"] == 0
    assert layers["bot.voice.client"] == 1 and layers["bot.realtime.driver"] == 1 and layers["bot.fakeserver.peer"] == 1
    assert layers["bot.store.records"] == 0 and layers["bot.store.sqlite"] == 1 and layers["bot.store.postgres"] == 1
    assert layers["bot.ops.metrics"] == 0 and layers["bot.ops.supervisor"] == 1 and layers["bot.ops.health"] == 1
    assert layers["bot.session.guild_session"] == 2 and layers["bot.app"] == 3 and layers["cogs.voice"] == 4


@pytest.mark.parametrize("name", all_modules())
def test_module_keeps_the_import_rules(name: str) -> None:
    assert rule_breaks(name, imported_names(name)) == []


@pytest.mark.parametrize("name", pure_modules())
def test_pure_module_imports_no_io_library_transitively(name: str) -> None:
    assert transitive_io_imports(name, set()) == []


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("bot.room.listening", "import asyncio", "bot.room.listening (pure) imports asyncio"),
        ("bot.room.listening", "from bot.session import limits", "bot.room.listening (room) imports bot.session"),
        ("bot.store.records", "from bot.voice.rtp import RTP_HEADER", "(pure) imports bot.voice.rtp (drivers)"),
        ("bot.store.records", "import asyncio", "bot.store.records (pure) imports asyncio"),
        ("bot.store.sqlite", "from bot.session.state import TaskSet", "imports bot.session.state (session)"),
        ("bot.voice.client", "from bot.session.registry import JoinError", "imports bot.session.registry (session)"),
        ("bot.session.wiring", "from bot.app import VoiceBot", "bot.session.wiring imports bot.app upwards"),
        ("bot.session.wiring", "import cogs.voice", "bot.session.wiring imports cogs.voice upwards"),
        ("bot.app", "from cogs.voice import VoiceCog", "bot.app (shell) imports cogs.voice (cogs)"),
    ],
)
def test_checker_catches_each_broken_rule(name: str, source: str, expected: str) -> None:
    breaks = rule_breaks(name, imports_of_source(source, name, is_package=False))
    assert any(expected in line for line in breaks), breaks


def test_transitive_check_follows_bot_modules() -> None:
    assert transitive_io_imports("bot.app", set())  # the shell imports discord: the checker must notice
    assert transitive_io_imports("bot.logging_setup", set())
    assert transitive_io_imports("bot.texts", set()) == []  # ... and not flag a module that imports none


def test_pure_modules_load_no_io_library_at_run_time() -> None:
    names = pure_modules()
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(' '.join(m for m in ('asyncio', 'discord', 'websockets', 'davey') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
