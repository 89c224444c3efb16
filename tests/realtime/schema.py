"""Validation of client events against the official ``openai`` package's typed models (GA and beta)."""

from __future__ import annotations

from typing import Any

from openai.types.beta.realtime import RealtimeClientEvent as BetaClientEvent
from openai.types.realtime import RealtimeClientEvent as GaClientEvent
from pydantic import BaseModel, TypeAdapter, ValidationError

_ADAPTERS: dict[str, TypeAdapter[Any]] = {"ga": TypeAdapter(GaClientEvent), "beta": TypeAdapter(BetaClientEvent)}


def _extras(value: Any, path: str) -> list[str]:
    """Keys the models did not declare (openai models accept and keep unknown keys; the bot must not send any)."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        found += [f"{path}.{key}" for key in (value.model_extra or {})]
        for name in type(value).model_fields:
            found += _extras(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += _extras(item, f"{path}[{i}]")
    return found


def schema_problems(event: dict[str, Any], dialect: str) -> list[str]:
    """Why ``event`` is not a valid client event of ``dialect``: type errors and undeclared keys; [] if valid."""
    try:
        model = _ADAPTERS[dialect].validate_python(event, strict=False)
    except ValidationError as exc:
        return [f"{event.get('type')}: {exc.error_count()} schema error(s): {str(exc)[:400]}"]
    return [f"{event.get('type')}: undeclared key {key}" for key in _extras(model, "event")]
