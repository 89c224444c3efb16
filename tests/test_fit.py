"""Fitting text into Discord's limits: cut with "…", whole items, embeds within every limit at once."""

from __future__ import annotations

from bot.texts import fit
from bot.texts.fit import EmbedField, EmbedText, clip, fit_embed, join_within


def test_clip_leaves_short_text_alone_and_marks_a_cut() -> None:
    assert clip("hello", 5) == "hello"
    assert clip("hello world", 8) == "hello w…" and len(clip("hello world", 8)) == 8
    assert clip("hello", 0) == ""
    assert fit.fit_message("x" * 5000) == "x" * 1999 + "…"


def test_join_within_keeps_whole_items_and_says_how_many_were_left_out() -> None:
    names = [f"name{n:02}" for n in range(60)]
    joined = join_within(names, 100)
    assert len(joined) <= 100 and joined.endswith("more")
    shown = joined.split(", ")[:-1]
    assert all(name in names for name in shown)  # never a name cut in half
    assert joined.endswith(f"… and {60 - len(shown)} more")
    assert join_within(["a", "b"], 100) == "a, b"


def test_an_embed_over_every_limit_is_brought_within_all_of_them() -> None:
    huge = EmbedText(
        title="t" * 300,
        description="d" * 5000,
        fields=tuple(EmbedField("n" * 300, "v" * 2000) for _ in range(40)),
        footer="f" * 3000,
        author="a" * 300,
    )
    fitted = fit_embed(huge)
    assert fitted.total_chars() <= fit.EMBED_TOTAL_CHARS
    assert len(fitted.title) == fit.EMBED_TITLE_CHARS and fitted.title.endswith("…")
    assert len(fitted.fields) <= fit.EMBED_FIELDS
    assert all(len(f.name) <= 256 and len(f.value) <= 1024 for f in fitted.fields)
    assert fitted.fields[-1].name == "…" and fitted.fields[-1].value.startswith("and ")
    assert len(fitted.footer) <= fit.EMBED_FOOTER_CHARS and len(fitted.author) <= fit.EMBED_AUTHOR_CHARS


def test_a_fitting_embed_is_unchanged_and_empty_fields_become_visible_blanks() -> None:
    small = EmbedText(title="Status", fields=(EmbedField("Channel", "<#1>"),))
    assert fit_embed(small) == small
    assert fit_embed(EmbedText(fields=(EmbedField("", ""),))).fields == (EmbedField(fit.EMPTY, fit.EMPTY),)


def test_fields_give_way_from_the_end_when_the_description_cannot() -> None:
    many = EmbedText(description="", fields=tuple(EmbedField(f"f{n}", "v" * 1024) for n in range(10)))
    fitted = fit_embed(many)
    assert fitted.total_chars() <= fit.EMBED_TOTAL_CHARS
    assert [f.name for f in fitted.fields[:-1]] == [f"f{n}" for n in range(len(fitted.fields) - 1)]
    assert fitted.fields[-1].value == f"and {10 - (len(fitted.fields) - 1)} more"
