"""The persona's get_your_info tool as the model sees it: schema and execution through the registry."""

from __future__ import annotations

import json

from bot.persona import TOOL_NAME, Persona, default_persona, get_your_info, persona_tools

PERSONA = Persona(name="Kit", age=7, style="s", facts={"favorite_color": "orange"}, extra_facts={"pet": "fox"})


def test_registers_exactly_get_your_info() -> None:
    tools = persona_tools(PERSONA)
    assert tools.names() == [TOOL_NAME] == ["get_your_info"]
    assert "get_your_info" in tools


def test_schema_describes_the_query() -> None:
    (schema,) = persona_tools(PERSONA).schemas()
    assert schema["type"] == "function"
    assert schema["name"] == "get_your_info"
    assert "BEFORE stating any personal fact" in schema["description"]
    assert "favorite_color" in schema["description"] and "pet" in schema["description"]
    parameters = schema["parameters"]
    assert parameters["required"] == ["query"]
    assert parameters["additionalProperties"] is False
    assert parameters["properties"]["query"]["type"] == "string"
    assert "favorite food" in parameters["properties"]["query"]["description"]


def test_execute_answers_from_the_bound_persona() -> None:
    tools = persona_tools(PERSONA)
    result = tools.execute("get_your_info", json.dumps({"query": "favourite colour"}))
    assert result.ok and result.error is None
    assert json.loads(result.output) == {"favorite_color": "orange"}
    other = persona_tools(default_persona()).execute("get_your_info", '{"query": "colour"}')
    assert other.output == get_your_info(default_persona(), "colour")
    assert other.output != result.output


def test_bad_calls_become_errors_for_the_model() -> None:
    tools = persona_tools(PERSONA)
    for arguments in ("", "{}", '{"query": 3}', '{"q": "age"}', "not json", '["age"]'):
        result = tools.execute("get_your_info", arguments)
        assert not result.ok, arguments
        assert "error" in json.loads(result.output)


def test_unknown_topic_is_a_successful_call_with_an_error_answer() -> None:
    result = persona_tools(PERSONA).execute("get_your_info", '{"query": "weather"}')
    assert result.ok
    assert json.loads(result.output)["error"] == "unknown topic"
