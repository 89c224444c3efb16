"""The function tools the model may call: schemas built from Python signatures, and safe execution.

A tool is a plain synchronous function with type hints and a Google-style docstring::

    registry = ToolRegistry()

    @registry.register
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> dict[str, float]:
        \"\"\"The current temperature in a city.

        Args:
            city: the city's name, e.g. "Osaka".
            unit: c for Celsius, f for Fahrenheit.
        \"\"\"

:meth:`ToolRegistry.schemas` gives the ``tools`` list for ``session.update``; :meth:`ToolRegistry.execute` runs a
call from the model and never raises: every failure (invalid JSON, a bad argument, an unknown tool, an exception,
a timeout) becomes a :class:`ToolResult` with ``ok=False`` and a JSON ``{"error": ...}`` output for the model.

Supported parameter types: ``str``, ``int``, ``float``, ``bool``, ``list[X]``, ``Literal[...]`` and ``X | None``
(``Optional[X]``) of those. Parameters with a default are not required.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import time
import types
import typing
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

_log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TIMEOUT_S = 10.0
#: Tool names the OpenAI API accepts.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Return|Yields|Raises|Examples?|Notes?|Attributes):\s*$")
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")

#: One pool shared by every registry. Python cannot kill a thread: a tool that overruns its timeout keeps running
#: (and keeps its worker busy) until it returns on its own, and the interpreter waits for it at exit. Tools that
#: do I/O should therefore set their own, shorter timeouts.
_SHARED_EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tool")


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome of one tool call."""

    output: str
    """JSON text sent to the model as ``function_call_output.output``."""
    ok: bool
    error: str | None
    """What went wrong (also in ``output`` as ``{"error": ...}``), or ``None``."""


class ToolArgumentError(ValueError):
    """The model's arguments do not fit the tool's signature."""


Validator = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    schema: dict[str, Any]
    validate: Validator
    required: bool


@dataclass(frozen=True, slots=True)
class _Tool:
    name: str
    description: str
    func: Callable[..., Any]
    params: tuple[_Param, ...]
    timeout_s: float

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": {
                "type": "object",
                "properties": {p.name: p.schema for p in self.params},
                "required": [p.name for p in self.params if p.required],
                "additionalProperties": False,
            },
        }

    def bind(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validated keyword arguments for ``func``.

        Raises:
            ToolArgumentError: a required argument is missing, an unknown one given, or one has the wrong type.
        """
        known = {p.name for p in self.params}
        extra = sorted(set(arguments) - known)
        if extra:
            expected = ", ".join(sorted(known)) or "none"
            raise ToolArgumentError(f"unexpected argument(s) {', '.join(extra)}; expected: {expected}")
        missing = [p.name for p in self.params if p.required and p.name not in arguments]
        if missing:
            raise ToolArgumentError(f"missing required argument(s): {', '.join(missing)}")
        bound: dict[str, Any] = {}
        for param in self.params:
            if param.name in arguments:
                try:
                    bound[param.name] = param.validate(arguments[param.name])
                except ToolArgumentError as exc:
                    raise ToolArgumentError(f"argument {param.name!r}: {exc}") from None
        return bound


class ToolRegistry:
    """The tools offered to the model, by name.

    Registration happens at set-up; :meth:`execute` may then be called from several threads at once.

    Args:
        executor: where tools run (so that a timeout can be enforced); by default a pool shared by all registries.
        clock: monotonic seconds, for the durations logged.
    """

    def __init__(self, executor: Executor | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._tools: dict[str, _Tool] = {}
        self._executor = executor if executor is not None else _SHARED_EXECUTOR
        self._clock = clock

    @overload
    def register(
        self, func: F, *, name: str | None = None, description: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> F: ...

    @overload
    def register(
        self,
        func: None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Callable[[F], F]: ...

    def register(
        self,
        func: F | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> F | Callable[[F], F]:
        """Add ``func`` as a tool; usable as ``@registry.register`` or ``@registry.register(name=...)``.

        The schema comes from the signature and the docstring: its text before the first section is the
        description (unless ``description`` is given), its ``Args:`` section describes the parameters.

        Returns:
            ``func`` itself, unchanged.

        Raises:
            TypeError: a parameter has no annotation, an unsupported type, or is ``*args``/``**kwargs``.
            ValueError: the name is invalid or taken, there is no description, the timeout is not positive, or
                the docstring documents a parameter that does not exist.
        """

        def add(f: F) -> F:
            tool = _build_tool(f, name=name, description=description, timeout_s=timeout_s)
            if tool.name in self._tools:
                raise ValueError(f"a tool named {tool.name!r} is already registered")
            self._tools[tool.name] = tool
            return f

        return add(func) if func is not None else add

    def schemas(self) -> list[dict[str, Any]]:
        """The ``tools`` list for the session: one function schema per tool, in registration order."""
        return [tool.schema() for tool in self._tools.values()]

    def names(self) -> list[str]:
        """The tools' names, in registration order."""
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def execute(self, name: str, arguments_json: str) -> ToolResult:
        """Run tool ``name`` with the model's JSON ``arguments_json``; never raises.

        Blocking and synchronous: the asyncio driver calls it through ``asyncio.to_thread``. The tool itself runs
        in the registry's executor and is waited for at most its ``timeout_s``; a tool that overruns is reported
        as timed out but its thread cannot be killed and runs on until the function returns. Empty arguments
        (``""``) mean no arguments. A ``str`` return value is sent as-is (tools should return JSON text); any
        other value is JSON-encoded.
        """
        started = self._clock()
        result = self._execute(name, arguments_json)
        duration_ms = (self._clock() - started) * 1000.0
        shown = name[:64] if isinstance(name, str) else repr(name)[:64]  # the model picks the name: keep logs sane
        if result.ok:
            _log.info("tool %s succeeded in %.1f ms", shown, duration_ms)
        else:
            _log.info("tool %s failed in %.1f ms: %.200s", shown, duration_ms, result.error)
        return result

    def _execute(self, name: str, arguments_json: str) -> ToolResult:
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is None:
            return _failure(f"unknown tool {str(name)[:64]!r}", known_tools=self.names())
        try:
            arguments = json.loads(arguments_json, parse_constant=_reject_constant) if arguments_json.strip() else {}
        except (ValueError, AttributeError, TypeError, RecursionError) as exc:
            return _failure(f"arguments are not valid JSON: {exc}")
        if not isinstance(arguments, dict):
            return _failure(f"arguments must be a JSON object, not {_json_kind(arguments)}")
        try:
            kwargs = tool.bind(arguments)
        except ToolArgumentError as exc:
            return _failure(str(exc))
        try:
            future = self._executor.submit(tool.func, **kwargs)
        except RuntimeError as exc:  # the executor has been shut down
            return _failure(f"tool {name!r} could not be started: {exc}")
        try:
            value = future.result(timeout=tool.timeout_s)
        except FutureTimeoutError:
            future.cancel()  # only helps if it never started; a running thread cannot be stopped
            return _failure(f"tool {name!r} timed out after {tool.timeout_s:g} s")
        except BaseException as exc:  # the tool's own failure, raised again in this thread by the future
            if isinstance(exc, KeyboardInterrupt):
                raise
            _log.warning("tool %s raised", name, exc_info=True)
            return _failure(f"tool {name!r} failed: {type(exc).__name__}: {exc}")
        if isinstance(value, str):
            return ToolResult(output=value, ok=True, error=None)
        try:
            return ToolResult(output=json.dumps(value, ensure_ascii=False, allow_nan=False), ok=True, error=None)
        except (TypeError, ValueError, RecursionError) as exc:
            return _failure(f"tool {name!r} returned a value that is not JSON: {exc}")


def _failure(error: str, **extra: Any) -> ToolResult:
    return ToolResult(output=json.dumps({"error": error, **extra}, ensure_ascii=False), ok=False, error=error)


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    return kinds.get(type(value), type(value).__name__)


# --- building a tool from a function ----------------------------------------------------------------------------


def _build_tool(func: Callable[..., Any], *, name: str | None, description: str | None, timeout_s: float) -> _Tool:
    tool_name = name if name is not None else getattr(func, "__name__", "")
    if not _NAME.match(tool_name):
        raise ValueError(f"invalid tool name {tool_name!r}: use 1-64 letters, digits, '_' or '-'")
    if not timeout_s > 0:
        raise ValueError(f"tool {tool_name!r}: timeout_s must be positive, not {timeout_s!r}")
    summary, arg_docs = parse_docstring(inspect.getdoc(func) or "")
    text = (description if description is not None else summary).strip()
    if not text:
        raise ValueError(f"tool {tool_name!r} needs a description: give it a docstring or description=")
    try:
        hints = typing.get_type_hints(func)
        signature = inspect.signature(func)
    except (NameError, TypeError, ValueError) as exc:
        raise TypeError(f"tool {tool_name!r}: cannot read the signature and type hints: {exc}") from None
    params: list[_Param] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(f"tool {tool_name!r}: parameter {param.name!r} must be a plain keyword-capable parameter")
        if param.name not in hints:
            raise TypeError(f"tool {tool_name!r}: parameter {param.name!r} needs a type annotation")
        try:
            schema, validate = _type_schema(hints[param.name])
        except TypeError as exc:
            raise TypeError(f"tool {tool_name!r}: parameter {param.name!r}: {exc}") from None
        if param.name in arg_docs:
            schema = {**schema, "description": arg_docs[param.name]}
        params.append(_Param(param.name, schema, validate, required=param.default is param.empty))
    stray = sorted(set(arg_docs) - set(signature.parameters))
    if stray:
        raise ValueError(f"tool {tool_name!r}: the docstring documents unknown parameter(s) {', '.join(stray)}")
    return _Tool(tool_name, text, func, tuple(params), float(timeout_s))


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its text before the first section and its ``Args:`` descriptions.

    Continuation lines (indented deeper than the argument's name) are joined to their argument with a space.
    """
    lines = doc.expandtabs().splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    arg_indent: int | None = None
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        header = _SECTION.match(stripped) if not line[:1].isspace() else None
        if header:
            section = header.group(1)
            arg_indent, current = None, None
            continue
        if section is None:
            summary.append(stripped)
            continue
        if section not in ("Args", "Arguments", "Parameters") or not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if arg_indent is None:
            arg_indent = indent
        match = _ARG_LINE.match(stripped)
        if indent <= arg_indent and match:
            current = match.group(1).lstrip("*")
            args[current] = match.group(2).strip()
        elif current is not None:
            args[current] = f"{args[current]} {stripped}".strip()
    paragraphs = "\n".join(summary).strip().split("\n\n")
    text = "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
    return text, args


def _type_schema(annotation: Any) -> tuple[dict[str, Any], Validator]:
    """The JSON schema for ``annotation`` and a function checking (and normalising) a decoded JSON value.

    Raises:
        TypeError: the annotation is not supported.
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            raise TypeError(f"unsupported union {annotation!r}: only X | None is supported")
        schema, validate = _type_schema(inner[0])
        return _nullable(schema), _optional(validate)
    if origin is Literal:
        choices = list(args)
        if not choices or not all(isinstance(c, str | int | bool) for c in choices):
            raise TypeError(f"unsupported literal {annotation!r}: use str, int or bool choices")
        kinds = {type(c) for c in choices}
        literal_schema: dict[str, Any] = {"enum": choices}
        if len(kinds) == 1:
            literal_schema = {"type": _SIMPLE[kinds.pop()][0], "enum": choices}
        return literal_schema, _choice(tuple(choices))
    if origin is list:
        if len(args) != 1:
            raise TypeError("list parameters need an item type, e.g. list[str]")
        item_schema, validate_item = _type_schema(args[0])
        return {"type": "array", "items": item_schema}, _array(validate_item)
    if annotation in _SIMPLE:
        json_type, validate = _SIMPLE[annotation]
        return {"type": json_type}, validate
    raise TypeError(f"unsupported type {annotation!r} (use str, int, float, bool, list[X], Literal[...], X | None)")


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema.get("type"), str):
        result = {**schema, "type": [schema["type"], "null"]}
        if "enum" in result:
            result["enum"] = [*result["enum"], None]
        return result
    return {"anyOf": [schema, {"type": "null"}]}


def _optional(validate: Validator) -> Validator:
    return lambda value: None if value is None else validate(value)


def _choice(choices: tuple[Any, ...]) -> Validator:
    def validate(value: Any) -> Any:
        for choice in choices:
            if type(value) is type(choice) and value == choice:
                return value
        raise ToolArgumentError(f"must be one of {json.dumps(list(choices))}, not {json.dumps(value)}")

    return validate


def _array(validate_item: Validator) -> Validator:
    def validate(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ToolArgumentError(f"must be an array, not {_json_kind(value)}")
        items: list[Any] = []
        for index, item in enumerate(value):
            try:
                items.append(validate_item(item))
            except ToolArgumentError as exc:
                raise ToolArgumentError(f"item {index} {exc}") from None
        return items

    return validate


def _exact(kind: type, label: str) -> Validator:
    def validate(value: Any) -> Any:
        if type(value) is not kind:
            raise ToolArgumentError(f"must be {label}, not {_json_kind(value)}")
        return value

    return validate


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolArgumentError(f"must be a number, not {_json_kind(value)}")
    return float(value)


def _integer(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # JSON has one number type: 3.0 is a fine integer
    if type(value) is not int:
        raise ToolArgumentError(
            f"must be an integer, not {_json_kind(value) if not isinstance(value, float) else value}"
        )
    return value


_SIMPLE: dict[Any, tuple[str, Validator]] = {
    str: ("string", _exact(str, "a string")),
    int: ("integer", _integer),
    float: ("number", _number),
    bool: ("boolean", _exact(bool, "a boolean")),
}
