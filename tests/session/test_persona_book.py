from __future__ import annotations

from pathlib import Path

import pytest

from bot.persona import PersonaError, default_persona
from bot.persona.library import PersonaLibrary
from bot.session.persona_book import PersonaBook, PersonaChoice
from bot.store.sqlite import SqliteStore

ROWAN = 'name = "Captain Rowan"\nage = 41\nstyle = "Gruff."\n'


async def test_a_server_sees_its_own_personas_first_then_the_shared_ones(tmp_path: Path) -> None:
    (tmp_path / "personas").mkdir()
    (tmp_path / "personas" / "bard.toml").write_text('name = "Bard"\nage = 30\nstyle = "Sings."\n', encoding="utf-8")
    store = await SqliteStore.in_data_dir(tmp_path)
    book = PersonaBook(PersonaLibrary(tmp_path / "personas"), store)
    try:
        await store.put_persona(1, "rowan", ROWAN, max_count=25)
        assert await book.choices(1) == [
            PersonaChoice("rowan", True),
            PersonaChoice("default", False),
            PersonaChoice("bard", False),
        ]
        assert await book.choices(2) == [PersonaChoice("default", False), PersonaChoice("bard", False)]
        assert (await book.load(1, "rowan")).name == "Captain Rowan"
        assert await book.load(1, None) == default_persona() and (await book.load(2, "bard")).name == "Bard"
        with pytest.raises(PersonaError, match="no persona called 'rowan'"):
            await book.load(2, "rowan")  # another server's persona is not this one's
        # an operator file added later under the server's key does not change the server's choice
        (tmp_path / "personas" / "rowan.toml").write_text('name = "Other"\nage = 1\nstyle = "s"\n', encoding="utf-8")
        assert (await book.load(1, "rowan")).name == "Captain Rowan" and book.is_shared("rowan")
        assert [c.key for c in await book.choices(1)] == ["rowan", "default", "bard"]  # listed once, as its own
        await store.put_persona(1, "broken", 'name = "B"\nage = 1\n', max_count=25)
        with pytest.raises(PersonaError, match=r"server persona 'broken'.*missing required key 'style'"):
            await book.load(1, "broken")
    finally:
        await store.close()
