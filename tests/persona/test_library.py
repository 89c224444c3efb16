from __future__ import annotations

from pathlib import Path

import pytest

from bot.persona import PersonaError, default_persona
from bot.persona.library import PersonaLibrary

GOOD = 'name = "Rowan"\nage = 41\nstyle = "Calm."\n'


def test_names_and_loading(tmp_path: Path) -> None:
    (tmp_path / "rowan.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad name!.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    library = PersonaLibrary(tmp_path)
    assert library.names() == ["default", "rowan"]
    assert library.load("rowan").name == "Rowan"
    assert library.load(None) == default_persona() == library.load("default")


def test_configured_default_file_replaces_the_built_in(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert PersonaLibrary(tmp_path / "none", default_file=path).load(None).name == "Rowan"
    assert PersonaLibrary(tmp_path / "none").names() == ["default"]  # a missing folder is just empty


def test_unknown_unsafe_and_broken_names_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text('name = "x"\nage = "old"\n', encoding="utf-8")
    library = PersonaLibrary(tmp_path)
    with pytest.raises(PersonaError, match="no persona called 'ghost'"):
        library.load("ghost")
    with pytest.raises(PersonaError, match="not a persona name"):
        library.load("../etc/passwd")
    with pytest.raises(PersonaError, match=r"broken\.toml, line 2"):
        library.load("broken")
