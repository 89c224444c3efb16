"""Token usage summed over a session, and its estimated cost from per-model price tables.

Cached input is billed per modality: ``input_token_details.cached_tokens_details`` says how many of the cached
tokens are text and how many audio, and each is taken off its own modality at its own cached rate. Input
transcription is billed by its own model (per minute or per token) and reported on
``conversation.item.input_audio_transcription.completed``. A model missing from the tables gives ``None`` for the
cost ("cost unknown"), never a figure from another model's prices.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

_T = TypeVar("_T")

PER_MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class Prices:
    """A realtime model's US dollars per one million tokens."""

    text_in: float
    text_cached_in: float
    text_out: float
    audio_in: float
    audio_cached_in: float
    audio_out: float


@dataclass(frozen=True, slots=True)
class TranscriptionPrices:
    """An input transcription model's prices: per minute of audio, or per one million tokens."""

    per_minute: float | None = None
    text_in: float | None = None
    audio_in: float | None = None
    text_out: float | None = None


#: Realtime models, US dollars per 1M tokens. Source: each model's page at developers.openai.com/api/docs/models,
#: read 2026-11-30, unless the comment says otherwise.
REALTIME_PRICES: dict[str, Prices] = {
    # gpt-realtime-1.5: text 4 / cached 0.4 / out 16; audio 32 / cached 0.4 / out 64.
    "gpt-realtime-1.5": Prices(4.0, 0.40, 16.0, 32.0, 0.40, 64.0),
    # gpt-realtime-2: text 4 / cached 0.4 / out 24; audio 32 / cached 0.4 / out 64.
    "gpt-realtime-2": Prices(4.0, 0.40, 24.0, 32.0, 0.40, 64.0),
    # gpt-realtime-2.1: text 4 / cached 0.4 / out 24; audio 32 / cached 0.4 / out 64.
    "gpt-realtime-2.1": Prices(4.0, 0.40, 24.0, 32.0, 0.40, 64.0),
    # gpt-realtime-2.1-mini: text 0.6 / cached 0.06 / out 2.4; audio 10 / cached 0.3 / out 20.
    "gpt-realtime-2.1-mini": Prices(0.60, 0.06, 2.40, 10.0, 0.30, 20.0),
    # gpt-realtime (deprecated, shutdown 2027-01-20): the seed's figures from its launch price list (2025-08),
    # equal to gpt-realtime-1.5's page.
    "gpt-realtime": Prices(4.0, 0.40, 16.0, 32.0, 0.40, 64.0),
}

#: Input transcription models. gpt-transcribe 0.0045 $/min and gpt-realtime-whisper 0.017 $/min: their model pages,
#: read 2026-11-30. whisper-1 0.006 $/min and the gpt-4o(-mini)-transcribe token prices: OpenAI's price list of
#: 2025-03 (all four shut down 2027-02-26), not re-checked.
TRANSCRIPTION_PRICES: dict[str, TranscriptionPrices] = {
    "gpt-transcribe": TranscriptionPrices(per_minute=0.0045),
    "gpt-realtime-whisper": TranscriptionPrices(per_minute=0.017),
    "whisper-1": TranscriptionPrices(per_minute=0.006),
    "gpt-4o-transcribe": TranscriptionPrices(text_in=2.50, audio_in=6.0, text_out=10.0),
    "gpt-4o-mini-transcribe": TranscriptionPrices(text_in=1.25, audio_in=3.0, text_out=5.0),
}

#: gpt-realtime-1.5's prices: the default model's.
GPT_REALTIME_PRICES = REALTIME_PRICES["gpt-realtime-1.5"]

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def _lookup(table: Mapping[str, _T], model: str | None) -> _T | None:
    if not model:
        return None
    return table.get(model) or table.get(_SNAPSHOT.sub("", model))


def prices_for(model: str | None) -> Prices | None:
    """The price table of a realtime model (a dated snapshot, ``gpt-realtime-2025-08-28``, takes its family's);
    ``None`` when unknown."""
    return _lookup(REALTIME_PRICES, model)


def transcription_prices_for(model: str | None) -> TranscriptionPrices | None:
    return _lookup(TRANSCRIPTION_PRICES, model)


@dataclass(slots=True)
class Usage:
    """Tokens by direction and modality (cached input split into text and audio) and transcription usage."""

    input_tokens: int = 0
    output_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_cached_tokens: int = 0
    input_cached_text_tokens: int = 0
    input_cached_audio_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    responses: int = 0
    transcription_seconds: float = 0.0
    transcription_text_in_tokens: int = 0
    transcription_audio_in_tokens: int = 0
    transcription_out_tokens: int = 0
    transcriptions: int = 0

    def add(self, usage: Mapping[str, Any]) -> Usage:
        """Add one ``response.done.usage`` object; returns the part added, as a :class:`Usage`. Never raises."""
        return self.add_part(usage_from_wire(usage))

    def add_transcription(self, usage: Mapping[str, Any] | None) -> Usage:
        """Add the ``usage`` of one ``...input_audio_transcription.completed``; returns the part added."""
        return self.add_part(transcription_usage_from_wire(usage))

    def add_part(self, part: Usage) -> Usage:
        for f in fields(Usage):
            setattr(self, f.name, getattr(self, f.name) + getattr(part, f.name))
        return part

    def realtime_cost_usd(self, prices: Prices) -> float:
        """The realtime model's part: each cached modality at its own cached rate."""
        return (
            (self.input_text_tokens - self.input_cached_text_tokens) * prices.text_in
            + self.input_cached_text_tokens * prices.text_cached_in
            + (self.input_audio_tokens - self.input_cached_audio_tokens) * prices.audio_in
            + self.input_cached_audio_tokens * prices.audio_cached_in
            + self.output_text_tokens * prices.text_out
            + self.output_audio_tokens * prices.audio_out
        ) / PER_MILLION

    def transcription_cost_usd(self, prices: TranscriptionPrices | None) -> float | None:
        """The transcription model's part; ``None`` if some of it cannot be priced."""
        tokens = (self.transcription_text_in_tokens, self.transcription_audio_in_tokens, self.transcription_out_tokens)
        if not self.transcription_seconds and not any(tokens):
            return 0.0
        if prices is None:
            return None
        cost = 0.0
        if self.transcription_seconds:
            if prices.per_minute is None:
                return None
            cost += self.transcription_seconds / 60 * prices.per_minute
        for count, rate in zip(tokens, (prices.text_in, prices.audio_in, prices.text_out), strict=True):
            if count:
                if rate is None:
                    return None
                cost += count * rate / PER_MILLION
        return cost

    def cost_usd(
        self, prices: Prices | None = GPT_REALTIME_PRICES, transcription: TranscriptionPrices | None = None
    ) -> float | None:
        """Estimated cost, or ``None`` ("cost unknown") when a model that was used has no price table."""
        realtime = 0.0 if self.responses == 0 else None if prices is None else self.realtime_cost_usd(prices)
        transcribed = self.transcription_cost_usd(transcription)
        return None if realtime is None or transcribed is None else realtime + transcribed

    def summary(
        self, prices: Prices | None = GPT_REALTIME_PRICES, transcription: TranscriptionPrices | None = None
    ) -> str:
        cost = self.cost_usd(prices, transcription)
        text = (
            f"{self.input_tokens} input tokens ({self.input_audio_tokens} audio, {self.input_text_tokens} text, "
            f"{self.input_cached_tokens} cached), {self.output_tokens} output tokens ({self.output_audio_tokens} "
            f"audio, {self.output_text_tokens} text)"
        )
        if self.transcriptions:
            text += f", {self.transcriptions} transcription(s)"
        return text + (", cost unknown" if cost is None else f", about ${cost:.4f}")


def _int(mapping: Any, key: str) -> int:
    if not isinstance(mapping, Mapping):
        return 0
    value = mapping.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_from_wire(usage: Mapping[str, Any] | None) -> Usage:
    """A :class:`Usage` from one ``response.done.usage`` object (missing or odd fields count as 0).

    Without ``cached_tokens_details`` (older servers) the cached tokens are taken from audio first, the bulk of a
    voice conversation's context; the split is clamped so no modality goes negative.
    """
    if not isinstance(usage, Mapping):
        return Usage()
    inp = usage.get("input_token_details")
    out = usage.get("output_token_details")
    text, audio, cached = _int(inp, "text_tokens"), _int(inp, "audio_tokens"), _int(inp, "cached_tokens")
    details = inp.get("cached_tokens_details") if isinstance(inp, Mapping) else None
    if isinstance(details, Mapping):
        cached_text, cached_audio = _int(details, "text_tokens"), _int(details, "audio_tokens")
    else:
        cached_audio = min(cached, audio)
        cached_text = cached - cached_audio
    return Usage(
        input_tokens=_int(usage, "input_tokens"),
        output_tokens=_int(usage, "output_tokens"),
        input_text_tokens=text,
        input_audio_tokens=audio,
        input_cached_tokens=cached,
        input_cached_text_tokens=min(cached_text, text),
        input_cached_audio_tokens=min(cached_audio, audio),
        output_text_tokens=_int(out, "text_tokens"),
        output_audio_tokens=_int(out, "audio_tokens"),
        responses=1,
    )


def transcription_usage_from_wire(usage: Mapping[str, Any] | None) -> Usage:
    """A :class:`Usage` from a transcription's ``usage``: ``{"type": "duration", "seconds": …}`` or
    ``{"type": "tokens", "input_tokens": …, "output_tokens": …, "input_token_details": {…}}``."""
    if not isinstance(usage, Mapping):
        return Usage()
    if usage.get("type") == "duration":
        seconds = usage.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds < 86_400:
            seconds = 0.0
        return Usage(transcription_seconds=float(seconds), transcriptions=1)
    details = usage.get("input_token_details")
    text, audio = _int(details, "text_tokens"), _int(details, "audio_tokens")
    if not isinstance(details, Mapping):
        audio = _int(usage, "input_tokens")  # no split given: the input is the audio
    return Usage(
        transcription_text_in_tokens=text,
        transcription_audio_in_tokens=audio,
        transcription_out_tokens=_int(usage, "output_tokens"),
        transcriptions=1,
    )
