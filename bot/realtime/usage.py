"""Token usage summed over a session, and its estimated cost from a price table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Prices:
    """US dollars per one million tokens."""

    audio_in: float
    audio_out: float
    text_in: float
    text_out: float
    cached_in: float


#: gpt-realtime list prices per 1M tokens (to be checked against the current price page).
GPT_REALTIME_PRICES = Prices(audio_in=32.0, audio_out=64.0, text_in=4.0, text_out=16.0, cached_in=0.40)


@dataclass(slots=True)
class Usage:
    """Tokens by direction and modality; ``add`` sums ``response.done.usage`` objects."""

    input_tokens: int = 0
    output_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_cached_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    responses: int = 0

    def add(self, usage: Mapping[str, Any]) -> Usage:
        """Add one ``response.done.usage`` object; returns the part added, as a :class:`Usage`. Never raises."""
        part = usage_from_wire(usage)
        for name in _FIELDS:
            setattr(self, name, getattr(self, name) + getattr(part, name))
        return part

    def cost_usd(self, prices: Prices = GPT_REALTIME_PRICES) -> float:
        """Estimated cost. Cached input tokens are billed at the cached rate instead of the text/audio rate."""
        uncached_text = max(self.input_text_tokens - self.input_cached_tokens, 0)
        return (
            uncached_text * prices.text_in
            + self.input_audio_tokens * prices.audio_in
            + self.input_cached_tokens * prices.cached_in
            + self.output_text_tokens * prices.text_out
            + self.output_audio_tokens * prices.audio_out
        ) / 1_000_000

    def summary(self, prices: Prices = GPT_REALTIME_PRICES) -> str:
        return (
            f"{self.input_tokens} input tokens ({self.input_audio_tokens} audio, {self.input_text_tokens} text, "
            f"{self.input_cached_tokens} cached), {self.output_tokens} output tokens ({self.output_audio_tokens} "
            f"audio, {self.output_text_tokens} text), about ${self.cost_usd(prices):.4f}"
        )


_FIELDS = (
    "input_tokens",
    "output_tokens",
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "responses",
)


def _int(mapping: Mapping[str, Any] | None, key: str) -> int:
    if not isinstance(mapping, Mapping):
        return 0
    value = mapping.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_from_wire(usage: Mapping[str, Any] | None) -> Usage:
    """A :class:`Usage` from one ``response.done.usage`` object (missing or odd fields count as 0)."""
    if not isinstance(usage, Mapping):
        return Usage()
    inp = usage.get("input_token_details")
    out = usage.get("output_token_details")
    return Usage(
        input_tokens=_int(usage, "input_tokens"),
        output_tokens=_int(usage, "output_tokens"),
        input_text_tokens=_int(inp, "text_tokens"),
        input_audio_tokens=_int(inp, "audio_tokens"),
        input_cached_tokens=_int(inp, "cached_tokens"),
        output_text_tokens=_int(out, "text_tokens"),
        output_audio_tokens=_int(out, "audio_tokens"),
        responses=1,
    )
