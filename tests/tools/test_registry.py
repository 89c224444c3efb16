"""ToolRegistry: schemas from real signatures and docstrings, and execution that never raises."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Optional

import pytest

from bot.tools import ToolRegistry, ToolResult, parse_docstring


def error_of(result: ToolResult) -> str:
    assert not result.ok
    assert result.error is not None
    payload = json.loads(result.output)
    assert payload["error"] == result.error
    return result.error


@pytest.fixture
def registry() -> ToolRegistry:
    reg = ToolRegistry()

    @reg.register
    def add(a: int, b: int = 2) -> int:
        """Add two whole numbers.

        A second paragraph of detail.

        Args:
            a: the first number.
            b: the second number, which has a description
                that continues on the next line.

        Returns:
            The sum.
        """
        return a + b

    @reg.register(name="greet", description="Say hello.")
    def greeting(who: str, shout: bool = False) -> str:
        return json.dumps({"text": f"hello {who}".upper() if shout else f"hello {who}"})

    return reg


def test_schema_from_signature_and_docstring(registry: ToolRegistry) -> None:
    add, greet = registry.schemas()
    assert add == {
        "type": "function",
        "name": "add",
        "description": "Add two whole numbers.\n\nA second paragraph of detail.",
        "parameters": {
            "type": "object",
            "properties": {
                "a": {"type": "integer", "description": "the first number."},
                "b": {
                    "type": "integer",
                    "description": "the second number, which has a description that continues on the next line.",
                },
            },
            "required": ["a"],
            "additionalProperties": False,
        },
    }
    assert greet["name"] == "greet"
    assert greet["description"] == "Say hello."
    assert greet["parameters"]["properties"] == {"who": {"type": "string"}, "shout": {"type": "boolean"}}
    assert greet["parameters"]["required"] == ["who"]


def test_names_and_membership(registry: ToolRegistry) -> None:
    assert registry.names() == ["add", "greet"]
    assert "add" in registry and "greet" in registry
    assert "greeting" not in registry and 3 not in registry
    assert len(registry) == 2


def test_register_returns_the_function_unchanged() -> None:
    reg = ToolRegistry()

    def double(x: float) -> float:
        """Double it."""
        return 2 * x

    assert reg.register(double) is double
    assert reg.register(name="twice")(double) is double
    assert reg.names() == ["double", "twice"]


def test_every_supported_type() -> None:
    reg = ToolRegistry()

    @reg.register
    def kinds(
        text: str,
        count: int,
        ratio: float,
        flag: bool,
        tags: list[str],
        matrix: list[list[int]],
        mode: Literal["fast", "slow"],
        level: Literal[1, 2, 3],
        note: str | None = None,
        old_style: Optional[int] = None,  # noqa: UP045 - typing.Optional must work too
        pick: Literal["a", "b"] | None = None,
    ) -> dict[str, Any]:
        """Echo the arguments."""
        return dict(locals())

    properties = reg.schemas()[0]["parameters"]["properties"]
    assert properties == {
        "text": {"type": "string"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "flag": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        "mode": {"type": "string", "enum": ["fast", "slow"]},
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "note": {"type": ["string", "null"]},
        "old_style": {"type": ["integer", "null"]},
        "pick": {"type": ["string", "null"], "enum": ["a", "b", None]},
    }
    assert reg.schemas()[0]["parameters"]["required"] == [
        "text", "count", "ratio", "flag", "tags", "matrix", "mode", "level"
    ]  # fmt: skip
    arguments = {
        "text": "t",
        "count": 3.0,
        "ratio": 2,
        "flag": True,
        "tags": ["x"],
        "matrix": [[1, 2], []],
        "mode": "slow",
        "level": 2,
        "note": None,
        "pick": "b",
    }
    result = reg.execute("kinds", json.dumps(arguments))
    assert result.ok, result.error
    echoed = json.loads(result.output)
    assert echoed == {**arguments, "count": 3, "ratio": 2.0, "old_style": None}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"a": "1"}', "argument 'a': must be an integer, not a string"),
        ('{"a": 1.5}', "argument 'a': must be an integer, not 1.5"),
        ('{"a": true}', "argument 'a': must be an integer, not a boolean"),
        ('{"a": null}', "argument 'a': must be an integer, not null"),
        ("{}", "missing required argument(s): a"),
        ('{"b": 1}', "missing required argument(s): a"),
        ('{"a": 1, "c": 2, "d": 3}', "unexpected argument(s) c, d; expected: a, b"),
        ("[1, 2]", "arguments must be a JSON object, not an array"),
        ('"a"', "arguments must be a JSON object, not a string"),
        ("null", "arguments must be a JSON object, not null"),
    ],
)
def test_bad_arguments(registry: ToolRegistry, arguments: str, message: str) -> None:
    assert error_of(registry.execute("add", arguments)) == message


def test_invalid_json(registry: ToolRegistry) -> None:
    for text in ('{"a": 1', "{'a': 1}", "nope", "\x00"):
        assert error_of(registry.execute("add", text)).startswith("arguments are not valid JSON")


def test_empty_arguments_mean_none() -> None:
    reg = ToolRegistry()

    @reg.register
    def ping() -> str:
        """Answer pong."""
        return '"pong"'

    assert reg.execute("ping", "").output == '"pong"'
    assert reg.execute("ping", "  ").ok
    assert reg.schemas()[0]["parameters"] == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }
    assert error_of(reg.execute("ping", '{"x": 1}')) == "unexpected argument(s) x; expected: none"


def test_wrong_types_inside_lists_and_literals() -> None:
    reg = ToolRegistry()

    @reg.register
    def pick(mode: Literal["a", "b"], tags: list[str] | None = None) -> str:
        """Pick."""
        return "{}"

    assert error_of(reg.execute("pick", '{"mode": "c"}')) == 'argument \'mode\': must be one of ["a", "b"], not "c"'
    assert (
        error_of(reg.execute("pick", '{"mode": "a", "tags": "x"}')) == "argument 'tags': must be an array, not a string"
    )
    assert error_of(reg.execute("pick", '{"mode": "a", "tags": ["x", 2]}')) == (
        "argument 'tags': item 1 must be a string, not a number"
    )
    assert reg.execute("pick", '{"mode": "b", "tags": null}').ok


def test_call_and_json_encoding(registry: ToolRegistry) -> None:
    result = registry.execute("add", '{"a": 40}')
    assert result == ToolResult(output="42", ok=True, error=None)
    greeted = registry.execute("greet", '{"who": "Zoë", "shout": true}')
    assert json.loads(greeted.output) == {"text": "HELLO ZOË"}


def test_non_str_results_are_json_encoded() -> None:
    reg = ToolRegistry()

    @reg.register
    def facts(n: int) -> Any:
        """Return something."""
        return [{"n": n, "name": "café"}, None, 1.5] if n else None

    assert json.loads(reg.execute("facts", '{"n": 1}').output) == [{"n": 1, "name": "café"}, None, 1.5]
    assert reg.execute("facts", '{"n": 0}').output == "null"


def test_unserializable_result_is_an_error() -> None:
    reg = ToolRegistry()

    @reg.register
    def weird() -> object:
        """Return a set."""
        return {1, 2}

    assert "not JSON" in error_of(reg.execute("weird", "{}"))


def test_unknown_tool_lists_known_tools(registry: ToolRegistry) -> None:
    result = registry.execute("subtract", '{"a": 1}')
    assert error_of(result) == "unknown tool 'subtract'"
    assert json.loads(result.output)["known_tools"] == ["add", "greet"]
    long_name = registry.execute("x" * 10_000, "{}")
    assert error_of(long_name) == f"unknown tool {'x' * 64!r}"


def test_exception_in_tool(caplog: pytest.LogCaptureFixture) -> None:
    reg = ToolRegistry()

    @reg.register
    def divide(a: int, b: int) -> float:
        """Divide a by b."""
        return a / b

    with caplog.at_level(logging.WARNING, logger="bot.tools"):
        result = reg.execute("divide", '{"a": 1, "b": 0}')
    assert error_of(result) == "tool 'divide' failed: ZeroDivisionError: division by zero"
    assert any(r.exc_info for r in caplog.records)


def test_timeout_reports_and_the_registry_keeps_working() -> None:
    release = threading.Event()
    finished = threading.Event()
    reg = ToolRegistry()

    @reg.register(timeout_s=0.05)
    def slow(seconds: float) -> str:
        """Sleep, unless released."""
        release.wait(seconds)
        finished.set()
        return "{}"

    @reg.register
    def fast() -> str:
        """Return at once."""
        return '{"ok": true}'

    result = reg.execute("slow", '{"seconds": 30}')
    assert error_of(result) == "tool 'slow' timed out after 0.05 s"
    assert not finished.is_set()  # the thread still runs: it cannot be killed
    assert reg.execute("fast", "{}").ok
    release.set()
    assert finished.wait(5)


def test_queued_call_that_times_out_never_runs() -> None:
    gate = threading.Event()
    ran: list[str] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        reg = ToolRegistry(executor=pool)

        @reg.register(timeout_s=0.05)
        def block(tag: str) -> str:
            """Block the only worker."""
            ran.append(tag)
            gate.wait(10)
            return "{}"

        assert error_of(reg.execute("block", '{"tag": "first"}')).endswith("timed out after 0.05 s")
        assert error_of(reg.execute("block", '{"tag": "queued"}')).endswith("timed out after 0.05 s")
        gate.set()
    assert ran == ["first"]


def test_shut_down_executor_is_an_error() -> None:
    pool = ThreadPoolExecutor(max_workers=1)
    pool.shutdown()
    reg = ToolRegistry(executor=pool)

    @reg.register
    def nothing() -> str:
        """Nothing."""
        return "{}"

    assert "could not be started" in error_of(reg.execute("nothing", "{}"))


def test_calls_from_many_threads_at_once(registry: ToolRegistry) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: registry.execute("add", json.dumps({"a": n, "b": n})), range(50)))
    assert [int(r.output) for r in results] == [2 * n for n in range(50)]


def test_logs_name_and_duration_but_not_output(caplog: pytest.LogCaptureFixture) -> None:
    ticks = iter([10.0, 10.25])
    reg = ToolRegistry(clock=lambda: next(ticks))

    @reg.register
    def secret() -> str:
        """Return a secret."""
        return '{"value": "hunter2"}'

    with caplog.at_level(logging.DEBUG, logger="bot.tools"):
        assert reg.execute("secret", "{}").ok
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert info == ["tool secret succeeded in 250.0 ms"]
    assert all("hunter2" not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("define", "error", "message"),
    [
        ("def f(x):\n    'Doc.'", TypeError, "needs a type annotation"),
        ("def f(*args: int) -> None:\n    'Doc.'", TypeError, "plain keyword-capable parameter"),
        ("def f(**kw: int) -> None:\n    'Doc.'", TypeError, "plain keyword-capable parameter"),
        ("def f(x: int, /) -> None:\n    'Doc.'", TypeError, "plain keyword-capable parameter"),
        ("def f(x: dict[str, int]) -> None:\n    'Doc.'", TypeError, "unsupported type"),
        ("def f(x: int | str) -> None:\n    'Doc.'", TypeError, "only X | None"),
        ("def f(x: list) -> None:\n    'Doc.'", TypeError, "unsupported type"),
        ("def f(x: int) -> None:\n    pass", ValueError, "needs a description"),
        (
            "def f(x: int) -> None:\n    '''Doc.\n\n    Args:\n        y: gone.\n    '''",
            ValueError,
            "unknown parameter",
        ),
    ],
)
def test_bad_tool_definitions_fail_at_registration(define: str, error: type[Exception], message: str) -> None:
    namespace: dict[str, Any] = {}
    exec(define, {"Literal": Literal}, namespace)
    with pytest.raises(error, match=message):
        ToolRegistry().register(namespace["f"])


def test_bad_names_duplicates_and_timeouts() -> None:
    reg = ToolRegistry()

    def f() -> None:
        """Doc."""

    reg.register(f)
    with pytest.raises(ValueError, match="already registered"):
        reg.register(f)
    with pytest.raises(ValueError, match="invalid tool name"):
        reg.register(f, name="has space")
    with pytest.raises(ValueError, match="invalid tool name"):
        reg.register(f, name="x" * 65)
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        reg.register(f, name="g", timeout_s=0)
    assert reg.names() == ["f"]


def test_parse_docstring_sections() -> None:
    summary, args = parse_docstring(
        "Summary line\ncontinues here.\n\nArgs:\n    x (int): the x.\n    *rest: more.\n\nRaises:\n    E: bad.\n"
    )
    assert summary == "Summary line continues here."
    assert args == {"x": "the x.", "rest": "more."}
    assert parse_docstring("") == ("", {})


def test_non_finite_and_deeply_nested_arguments_are_rejected(registry: ToolRegistry) -> None:
    assert error_of(registry.execute("add", '{"a": NaN}')) == "arguments are not valid JSON: NaN is not a JSON number"
    assert "not valid JSON" in error_of(registry.execute("add", '{"a": -Infinity}'))
    assert "not valid JSON" in error_of(registry.execute("add", "[" * 100_000 + "]" * 100_000))


def test_non_finite_result_is_an_error() -> None:
    reg = ToolRegistry()

    @reg.register
    def infinite() -> float:
        """Return infinity."""
        return float("inf")

    assert "not JSON" in error_of(reg.execute("infinite", "{}"))


def test_system_exit_in_a_tool_does_not_escape() -> None:
    reg = ToolRegistry()

    @reg.register
    def quit_now() -> None:
        """Try to exit."""
        raise SystemExit(3)

    assert error_of(reg.execute("quit_now", "{}")) == "tool 'quit_now' failed: SystemExit: 3"


class Counter:
    def __init__(self) -> None:
        self.total = 0

    def bump(self, by: int = 1) -> int:
        """Add to the running total.

        Args:
            by: how much to add.
        """
        self.total += by
        return self.total


def test_bound_method_as_a_tool() -> None:
    counter = Counter()
    reg = ToolRegistry()
    reg.register(counter.bump)
    assert reg.schemas()[0]["parameters"]["properties"] == {
        "by": {"type": "integer", "description": "how much to add."}
    }
    assert reg.execute("bump", '{"by": 5}').output == "5"
    assert reg.execute("bump", "{}").output == "6"
    assert counter.total == 6


def test_unresolvable_annotation_is_a_clear_type_error() -> None:
    namespace: dict[str, Any] = {}
    exec("from __future__ import annotations\ndef f(x: Missing) -> None:\n    'Doc.'", namespace)
    with pytest.raises(TypeError, match="cannot read the signature and type hints"):
        ToolRegistry().register(namespace["f"])
