"""The import direction: pure logic never imports asyncio, discord, websockets, or a layer above it.

Pure logic is the audio DSP, the persona and tools, configuration and secrets, and the Realtime protocol core
(every module of ``bot.realtime`` but its I/O drivers). Checked statically (imports anywhere in the module,
transitively through other ``bot`` modules) and at run time in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("asyncio", "discord", "websockets", "davey", "cogs", "bot.app", "bot.voice")
PURE_PACKAGES = ("bot.audio", "bot.persona")
PURE_MODULES = (
    "bot.tools",
    "bot.config",
    "bot.secret",
    "bot.store",
    "bot.limits",
    "bot.personas",
    "bot.attribution",
    "bot.latency",
    "bot.listening",
    "bot.echo_guard",
    "bot.turn_timing",
)
#: The only ``bot.realtime`` modules allowed to do I/O; every other one is the sans-I/O core.
REALTIME_DRIVERS = frozenset({"bot.realtime.driver", "bot.realtime.simulate", "bot.realtime.connection"})


def module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def modules_in(package: str) -> list[str]:
    directory = ROOT.joinpath(*package.split("."))
    return sorted(package if p.name == "__init__.py" else f"{package}.{p.stem}" for p in directory.glob("*.py"))


def pure_modules() -> list[str]:
    names = [m for pkg in PURE_PACKAGES for m in modules_in(pkg)]
    names += [m for m in PURE_MODULES if module_path(m) is not None]
    names += [m for m in modules_in("bot.realtime") if m not in REALTIME_DRIVERS]
    return names


def imported_names(name: str) -> set[str]:
    path = module_path(name)
    assert path is not None, name
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
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


def violations(name: str, seen: set[str]) -> list[str]:
    if name in seen:
        return []
    seen.add(name)
    bad: list[str] = []
    for imported in sorted(imported_names(name)):
        if any(imported == f or imported.startswith(f + ".") for f in FORBIDDEN):
            bad.append(f"{name} imports {imported}")
        elif imported.startswith("bot.") and module_path(imported) is not None:
            bad += violations(imported, seen)
    return bad


def test_there_is_pure_logic_to_check() -> None:
    assert "bot.config" in pure_modules()
    assert "bot.audio.formats" in pure_modules()


@pytest.mark.parametrize("name", pure_modules())
def test_pure_module_imports_no_io_layer(name: str) -> None:
    assert violations(name, set()) == []


def test_checker_catches_a_forbidden_import() -> None:
    assert violations("bot.app", set())  # the Discord layer imports discord: the checker must notice
    assert violations("bot.logging_setup", set())


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
