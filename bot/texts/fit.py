"""Discord's size limits on messages and embeds, and fitting text inside them (cut with "…", never rejected).

Discord answers a too-long message or embed with HTTP 400, and the user sees nothing; every reply and post goes
through :func:`fit_message` or :func:`fit_embed` first. Pure: the embed is described by :class:`EmbedText`, which
the Discord layer converts to and from ``discord.Embed``. Lengths are counted in code points, as discord.py does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

ELLIPSIS = "…"
MESSAGE_CHARS = 2000
EMBED_TITLE_CHARS = 256
EMBED_DESCRIPTION_CHARS = 4096
EMBED_FIELD_NAME_CHARS = 256
EMBED_FIELD_VALUE_CHARS = 1024
EMBED_FOOTER_CHARS = 2048
EMBED_AUTHOR_CHARS = 256
EMBED_FIELDS = 25
EMBED_TOTAL_CHARS = 6000
#: What an empty field name or value becomes (Discord refuses empty ones).
EMPTY = "\u200b"


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "…" when cut."""
    if limit < 1:
        return ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def fit_message(text: str) -> str:
    """A message's content within Discord's 2,000 characters."""
    return clip(text, MESSAGE_CHARS)


def join_within(items: Sequence[str], limit: int, sep: str = ", ") -> str:
    """As many whole ``items`` as fit in ``limit`` characters, then "… and N more" (never an item cut in half)."""
    out: list[str] = []
    used = 0
    for index, item in enumerate(items):
        left = len(items) - index - 1
        tail = f"{sep}{ELLIPSIS} and {left} more" if left else ""
        cost = len(item) + (len(sep) if out else 0)
        if used + cost + len(tail) <= limit:
            out.append(item)
            used += cost
            continue
        rest = len(items) - index
        return clip(sep.join([*out, f"{ELLIPSIS} and {rest} more"]), limit)
    return sep.join(out)


@dataclass(frozen=True, slots=True)
class EmbedField:
    name: str
    value: str
    inline: bool = True


@dataclass(frozen=True, slots=True)
class EmbedText:
    """The text parts of an embed, the ones Discord limits."""

    title: str = ""
    description: str = ""
    fields: tuple[EmbedField, ...] = field(default_factory=tuple)
    footer: str = ""
    author: str = ""

    def total_chars(self) -> int:
        parts = (self.title, self.description, self.footer, self.author)
        return sum(map(len, parts)) + sum(len(f.name) + len(f.value) for f in self.fields)


def fit_embed(embed: EmbedText) -> EmbedText:
    """``embed`` within every limit: each part clipped, at most 25 fields, 6,000 characters in all.

    Over the total, the description gives way first, then the last fields are dropped (the last one kept says how
    many went), then the footer.
    """
    fields = tuple(
        EmbedField(
            clip(f.name, EMBED_FIELD_NAME_CHARS) or EMPTY, clip(f.value, EMBED_FIELD_VALUE_CHARS) or EMPTY, f.inline
        )
        for f in embed.fields
    )
    if len(fields) > EMBED_FIELDS:
        dropped = len(fields) - EMBED_FIELDS + 1
        fields = (*fields[: EMBED_FIELDS - 1], EmbedField(ELLIPSIS, f"and {dropped} more", False))
    fitted = EmbedText(
        title=clip(embed.title, EMBED_TITLE_CHARS),
        description=clip(embed.description, EMBED_DESCRIPTION_CHARS),
        fields=fields,
        footer=clip(embed.footer, EMBED_FOOTER_CHARS),
        author=clip(embed.author, EMBED_AUTHOR_CHARS),
    )
    excess = fitted.total_chars() - EMBED_TOTAL_CHARS
    if excess > 0 and fitted.description:
        fitted = replace(fitted, description=clip(fitted.description, max(1, len(fitted.description) - excess)))
    dropped = 0
    while fitted.total_chars() > EMBED_TOTAL_CHARS:
        real = fitted.fields[:-1] if dropped else fitted.fields
        if not real:
            break
        dropped += 1
        fitted = replace(fitted, fields=(*real[:-1], EmbedField(ELLIPSIS, f"and {dropped} more", False)))
    excess = fitted.total_chars() - EMBED_TOTAL_CHARS
    if excess > 0:
        fitted = replace(fitted, footer=clip(fitted.footer, max(0, len(fitted.footer) - excess)))
    return fitted
