"""Bad input on the chat surface: each is a 4xx in the envelope of the route called, with an
``x-request-id``, never a 500, and never reaches an upstream. Every case is sent toward both
kinds of channel, so the relay's checks and both translators are exercised."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from reapi.protocols.limits import MAX_DEPTH, MAX_MODEL_NAME
from reapi.settings import Settings
from reapi.storage import migrate, tables
from tests.conftest import Gateway, gateway_config, start_gateway
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.http.conftest import CLAUDE_MODEL, OPENAI_MODEL
from tests.http.envelopes import (
    CHAT_PATH,
    COUNT_PATH,
    MESSAGES_PATH,
    SURFACE_OF,
    assert_error,
)
from tests.schemas import assert_valid, use_spec

MODELS = [OPENAI_MODEL, CLAUDE_MODEL]
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(autouse=True)
def _spec(openai_spec: dict[str, Any]) -> None:
    use_spec(openai_spec)


def post(gateway: Gateway, path: str, body: Any, key: str | None = None) -> httpx.Response:
    return httpx.post(
        gateway.url + path,
        headers={"Authorization": f"Bearer {key or gateway.key()}"},
        # The standard library's encoder, since orjson refuses the deepest bodies sent here.
        content=json.dumps(body).encode(),
        timeout=30,
    )


def base(path: str, model: str) -> dict[str, Any]:
    if path == CHAT_PATH:
        return {"model": model, "messages": HELLO}
    if path == MESSAGES_PATH:
        return {"model": model, "max_tokens": 100, "messages": HELLO}
    return {"model": model, "messages": HELLO}


def depth(value: Any) -> int:
    """JSON nesting depth, counted as orjson counts it: a lone scalar is 0, ``[]`` is 1."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def array_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return schema


def with_tool(path: str, model: str, schema: dict[str, Any]) -> dict[str, Any]:
    tool = (
        {"type": "function", "function": {"name": "nest", "parameters": schema}}
        if path == CHAT_PATH
        else {"name": "nest", "input_schema": schema}
    )
    return {**base(path, model), "tools": [tool]}


def in_flight(gateway: Gateway) -> float:
    for line in httpx.get(gateway.url + "/metrics").text.splitlines():
        if line.startswith("reapi_requests_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no in-flight gauge")


# Nesting -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CHAT_PATH, MESSAGES_PATH, COUNT_PATH])
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("where", ["tool schema", "unknown field", "far beyond any limit"])
def test_bodies_nested_too_deep_are_400(
    mixed: Gateway, upstream: FakeOpenAI, path: str, model: str, where: str
) -> None:
    if where == "tool schema":
        body = with_tool(path, model, array_schema(MAX_DEPTH))
    else:
        levels = MAX_DEPTH if where == "unknown field" else 300
        nested: Any = "bottom"
        for _ in range(levels):
            nested = [nested]
        body = {**base(path, model), "extra": nested}
    assert depth(body) > MAX_DEPTH
    error = assert_error(post(mixed, path, body), SURFACE_OF[path], 400)
    assert f"nested deeper than {MAX_DEPTH}" in error["message"]
    assert upstream.requests == []


@pytest.mark.parametrize("path", [CHAT_PATH, MESSAGES_PATH])
@pytest.mark.parametrize("model", MODELS)
def test_a_tool_schema_nested_up_to_the_limit_reaches_the_upstream_intact(
    mixed: Gateway, upstream: FakeOpenAI, path: str, model: str
) -> None:
    schema = array_schema(MAX_DEPTH - depth(with_tool(path, model, array_schema(0))))
    body = with_tool(path, model, schema)
    assert depth(body) == MAX_DEPTH
    response = post(mixed, path, body)
    assert response.status_code == 200, response.text
    [sent] = upstream.requests
    [tool] = sent.body["tools"]
    # Translation may move the schema one level deeper (Anthropic -> OpenAI): still sent whole.
    assert tool.get("input_schema", tool.get("function", {}).get("parameters")) == schema


# Model names ---------------------------------------------------------------------------------


def test_the_protocol_limit_on_model_names_fits_every_column_that_records_them() -> None:
    for column in (tables.UsageRecord.__table__.c.model, tables.LedgerEntry.__table__.c.model):
        assert column.type.length >= MAX_MODEL_NAME  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", [CHAT_PATH, MESSAGES_PATH, COUNT_PATH])
def test_model_names_longer_than_the_limit_are_400_and_leave_nothing_in_flight(
    mixed: Gateway, upstream: FakeOpenAI, path: str
) -> None:
    key = mixed.key()
    too_long = assert_error(
        post(mixed, path, base(path, "m" * (MAX_MODEL_NAME + 1)), key), SURFACE_OF[path], 400
    )
    assert str(MAX_MODEL_NAME) in too_long["message"]
    if SURFACE_OF[path] == "openai":
        assert too_long["param"] == "model"
    longest = assert_error(
        post(mixed, path, base(path, "m" * MAX_MODEL_NAME), key), SURFACE_OF[path], 404
    )
    assert "does not exist" in longest["message"]
    assert upstream.requests == []
    deadline = time.monotonic() + 5
    while in_flight(mixed) != 0:
        assert time.monotonic() < deadline, "a refused call stayed in flight"
        time.sleep(0.05)


# Wrong types ---------------------------------------------------------------------------------

ASSISTANT_CALLED = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
}
TOOL_ANSWERED = {"role": "tool", "tool_call_id": "c1", "content": "done"}


def assistant_call(**call: Any) -> list[dict[str, Any]]:
    first = {**ASSISTANT_CALLED["tool_calls"][0], **call}  # type: ignore[index]
    return [*HELLO, {**ASSISTANT_CALLED, "tool_calls": [first]}, TOOL_ANSWERED]


OPENAI_CASES: list[tuple[dict[str, Any], str]] = [
    ({"messages": [{"role": {}, "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": ["user"], "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": {}}]}]}, "messages[0].content[0].type"),
    (
        {"messages": [{"role": "user", "content": [{"type": ["text"], "text": "x"}]}]},
        "messages[0].content[0].type",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "x": 1}, 5]}]},
        "messages[0].content[1]",
    ),
    ({"messages": [{"role": "user", "content": "x", "name": 5}]}, "messages[0].name"),
    ({"messages": assistant_call(function=["a"])}, "messages[1].tool_calls[0].function"),
    (
        {"messages": assistant_call(function={"name": ["f"], "arguments": "{}"})},
        "messages[1].tool_calls[0].function.name",
    ),
    (
        {"messages": assistant_call(function={"name": "f", "arguments": {"a": 1}})},
        "messages[1].tool_calls[0].function.arguments",
    ),
    ({"messages": assistant_call(id=7)}, "messages[1].tool_calls[0].id"),
    ({"messages": assistant_call(type={})}, "messages[1].tool_calls[0].type"),
    ({"messages": assistant_call(custom="x", type="custom")}, "messages[1].tool_calls[0].custom"),
    (
        {"messages": [*HELLO, {**ASSISTANT_CALLED, "tool_calls": {"a": 1}}]},
        "messages[1].tool_calls",
    ),
    (
        {"messages": [*HELLO, ASSISTANT_CALLED, {**TOOL_ANSWERED, "tool_call_id": []}]},
        "messages[2].tool_call_id",
    ),
    ({"messages": [*HELLO, {**ASSISTANT_CALLED, "refusal": 1}]}, "messages[1].refusal"),
    ({"reasoning_effort": []}, "reasoning_effort"),
    ({"reasoning_effort": {"level": "high"}}, "reasoning_effort"),
    ({"reasoning_effort": 3}, "reasoning_effort"),
    ({"tool_choice": {"type": "function", "function": ["a"]}}, "tool_choice.function"),
    ({"tool_choice": {"type": "function", "function": {"name": 5}}}, "tool_choice.function.name"),
    ({"tool_choice": {"type": "custom", "custom": "x"}}, "tool_choice.custom"),
    ({"tool_choice": {"type": ["function"]}}, "tool_choice.type"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    (
        {"response_format": {"type": "json_schema", "json_schema": []}},
        "response_format.json_schema",
    ),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": []}}},
        "response_format.json_schema.schema",
    ),
    ({"response_format": "json"}, "response_format"),
    ({"response_format": {"type": {}}}, "response_format.type"),
    (
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
        "tools[0].function.parameters",
    ),
    (
        {"tools": [{"type": "function", "function": {"name": "f", "description": 1}}]},
        "tools[0].function.description",
    ),
    ({"tools": [{"type": [], "function": {"name": "f"}}]}, "tools[0].type"),
    ({"tools": [{"type": "custom", "custom": {"name": 1}}]}, "tools[0].custom.name"),
    ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ({"user": 5}, "user"),
    ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ({"stop": {"a": 1}}, "stop"),
    ({"n": [1]}, "n"),
]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("change", "param"), OPENAI_CASES)
def test_wrong_types_on_chat_completions_are_400(
    mixed: Gateway, upstream: FakeOpenAI, model: str, change: dict[str, Any], param: str
) -> None:
    response = post(mixed, CHAT_PATH, {**base(CHAT_PATH, model), **change})
    error = assert_error(response, "openai", 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert upstream.requests == []


def image(source: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image", "source": source}]}]


def tool_result(**fields: Any) -> list[dict[str, Any]]:
    return [
        *HELLO,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", **fields}]},
    ]


ANTHROPIC_CASES: list[tuple[dict[str, Any], str]] = [
    ({"messages": [{"role": {}, "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": [{"type": []}]}]}, "messages.0.content.0.type"),
    (
        {"messages": image({"type": "base64", "media_type": [], "data": "AAAA"})},
        "messages.0.content.0.source.media_type",
    ),
    (
        {"messages": image({"type": {}, "url": "https://example.com/a.png"})},
        "messages.0.content.0.source.type",
    ),
    (
        {"messages": image({"type": "base64", "media_type": "image/png", "data": 5})},
        "messages.0.content.0.source.data",
    ),
    ({"messages": tool_result(is_error="yes")}, "messages.2.content.0.is_error"),
    ({"tools": [{"name": "f", "input_schema": []}]}, "tools.0.input_schema"),
    ({"tools": [{"name": "f", "input_schema": {}, "description": 5}]}, "tools.0.description"),
    ({"tools": [{"name": "f", "type": [], "input_schema": {}}]}, "tools.0.type"),
    ({"tool_choice": {"type": "tool", "name": 5}}, "tool_choice.name"),
    ({"tool_choice": {"type": []}}, "tool_choice.type"),
    ({"tool_choice": {"type": "auto", "disable_parallel_tool_use": "y"}}, "tool_choice"),
    ({"metadata": []}, "metadata"),
    ({"metadata": {"user_id": 5}}, "metadata.user_id"),
    ({"thinking": "yes"}, "thinking"),
    ({"output_config": ["json"]}, "output_config"),
]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("change", "param"), ANTHROPIC_CASES)
def test_wrong_types_on_messages_are_400(
    mixed: Gateway, upstream: FakeOpenAI, model: str, change: dict[str, Any], param: str
) -> None:
    response = post(mixed, MESSAGES_PATH, {**base(MESSAGES_PATH, model), **change})
    error = assert_error(response, "anthropic", 400)
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(param + ":"), error
    assert upstream.requests == []


@pytest.mark.parametrize("model", MODELS)
def test_wrong_types_on_count_tokens_are_400(
    mixed: Gateway, upstream: FakeOpenAI, model: str
) -> None:
    body = {"model": model, "messages": [{"role": ["user"], "content": "x"}]}
    error = assert_error(post(mixed, COUNT_PATH, body), "anthropic", 400)
    assert error["message"].startswith("messages.0.role:")
    assert upstream.requests == []


# Values the OpenAI spec allows, toward Claude ------------------------------------------------


def test_reasoning_effort_max_asks_claude_for_the_largest_thinking_budget(
    mixed: Gateway, upstream: FakeOpenAI
) -> None:
    body = {**base(CHAT_PATH, CLAUDE_MODEL), "reasoning_effort": "max", "max_tokens": 100_000}
    response = post(mixed, CHAT_PATH, body)
    assert response.status_code == 200, response.text
    assert_valid("CreateChatCompletionResponse", response.json())
    assert upstream.requests[0].body["thinking"] == {"type": "enabled", "budget_tokens": 65536}
    upstream.reset()
    response = post(mixed, CHAT_PATH, {**body, "max_tokens": 8000})
    assert response.status_code == 200, response.text
    assert upstream.requests[0].body["thinking"] == {"type": "enabled", "budget_tokens": 7999}


def test_custom_tools_reach_claude_as_tools_taking_one_string(
    mixed: Gateway, upstream: FakeOpenAI
) -> None:
    call = {"id": "toolu_9", "function": {"name": "run_sql", "arguments": '{"input": "SELECT 1"}'}}
    upstream.enqueue(Reply(tool_calls=[call], finish_reason="tool_calls"))
    grammar = {"type": "grammar", "grammar": {"syntax": "lark", "definition": 'start: "SELECT 1"'}}
    body = {
        **base(CHAT_PATH, CLAUDE_MODEL),
        "messages": [
            {"role": "user", "content": "Count the rows."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "custom",
                        "custom": {"name": "run_sql", "input": "SELECT count(*) FROM t"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "42"},
        ],
        "tools": [
            {
                "type": "custom",
                "custom": {"name": "run_sql", "description": "Runs SQL.", "format": grammar},
            },
            {"type": "custom", "custom": {"name": "note"}},
        ],
        "tool_choice": {"type": "custom", "custom": {"name": "run_sql"}},
    }
    response = post(mixed, CHAT_PATH, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_valid("CreateChatCompletionResponse", answer)
    [made] = answer["choices"][0]["message"]["tool_calls"]
    assert made["type"] == "function" and made["function"]["name"] == "run_sql"
    assert orjson.loads(made["function"]["arguments"]) == {"input": "SELECT 1"}
    sent = upstream.requests[0].body
    run_sql, note = sent["tools"]
    assert run_sql["name"] == "run_sql"
    assert run_sql["input_schema"]["properties"]["input"]["type"] == "string"
    assert run_sql["input_schema"]["required"] == ["input"]
    assert "Runs SQL." in run_sql["description"]
    assert 'start: "SELECT 1"' in run_sql["input_schema"]["properties"]["input"]["description"]
    assert note["name"] == "note" and note["input_schema"]["required"] == ["input"]
    assert sent["tool_choice"] == {"type": "tool", "name": "run_sql"}
    assert sent["messages"][1]["content"] == [
        {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "run_sql",
            "input": {"input": "SELECT count(*) FROM t"},
        }
    ]


@pytest.mark.parametrize("model", MODELS)
def test_an_assistant_turn_without_content_is_accepted(
    mixed: Gateway, upstream: FakeOpenAI, model: str
) -> None:
    """The spec requires no content on an assistant turn (not even with no tool calls)."""
    messages = [*HELLO, {"role": "assistant"}, {"role": "user", "content": "Still there?"}]
    response = post(mixed, CHAT_PATH, {**base(CHAT_PATH, model), "messages": messages})
    assert response.status_code == 200, response.text
    assert_valid("CreateChatCompletionResponse", response.json())
    assert len(upstream.requests) == 1


def test_a_legacy_function_result_may_be_null(mixed: Gateway, upstream: FakeOpenAI) -> None:
    messages = [*HELLO, {"role": "function", "name": "lookup", "content": None}]
    response = post(mixed, CHAT_PATH, {**base(CHAT_PATH, OPENAI_MODEL), "messages": messages})
    assert response.status_code == 200, response.text
    assert upstream.requests[0].body["messages"][1] == messages[1]
    # Without the field at all it is still refused, as OpenAI refuses it.
    messages[1] = {"role": "function", "name": "lookup"}
    response = post(mixed, CHAT_PATH, {**base(CHAT_PATH, OPENAI_MODEL), "messages": messages})
    assert assert_error(response, "openai", 400)["param"] == "messages[1].content"


# Wrong methods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "surface", "allowed"),
    [
        ("GET", CHAT_PATH, "openai", "POST"),
        ("GET", MESSAGES_PATH, "anthropic", "POST"),
        ("PUT", MESSAGES_PATH, "anthropic", "POST"),
        ("GET", COUNT_PATH, "anthropic", "POST"),
        ("POST", "/v1/models", "openai", "GET"),
        ("DELETE", "/v1/dashboard/usage", "openai", "GET"),
        ("PUT", "/admin/users", "openai", "GET, POST"),
        ("GET", "/admin/keys/k1", "openai", "DELETE"),
        ("GET", "/api/v1/images/generations", "tasks", "POST"),
        ("DELETE", "/api/v1/tasks/t1", "tasks", "GET"),
    ],
)
def test_wrong_methods_are_405_in_the_routes_own_envelope(
    mixed: Gateway, method: str, path: str, surface: Any, allowed: str
) -> None:
    response = httpx.request(method, mixed.url + path)
    error = assert_error(response, surface, 405)
    assert set(response.headers["allow"].split(", ")) >= set(allowed.split(", "))
    if surface != "tasks":  # the task envelope says it in its own words
        assert method in error["message"]


# Failures inside the gateway -----------------------------------------------------------------


def test_a_failure_inside_the_gateway_is_still_answered_in_the_routes_envelope(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    """The database failing under a call (here: tables moved away) is the gateway's own fault:
    the client still gets the route's envelope with an x-request-id, the call is counted as a
    ``gateway_error`` (not an upstream's), and nothing stays in flight."""
    path = tmp_path / "breaks.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    gateway = start_gateway(Settings(database_url=url), gateway_config(fake_openai.base_url))
    moved: list[str] = []

    def move_away(table: str) -> None:
        with sqlite3.connect(path) as db:
            db.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
        moved.append(table)

    try:
        key = gateway.key()
        move_away("usage_records")
        # The refusal stands even though its usage record cannot be written.
        for endpoint in (CHAT_PATH, MESSAGES_PATH):
            refused = post(gateway, endpoint, base(endpoint, "gpt-0"), key)
            assert_error(refused, SURFACE_OF[endpoint], 404)
        move_away("api_keys")
        for endpoint in (CHAT_PATH, MESSAGES_PATH):
            broken = post(gateway, endpoint, base(endpoint, OPENAI_MODEL), "sk-never-seen")
            error = assert_error(broken, SURFACE_OF[endpoint], 500)
            assert "safe to retry" in error["message"]
        metrics = httpx.get(gateway.url + "/metrics").text
        for name in ("chat.completions", "messages"):
            assert (
                f'reapi_requests_total{{endpoint="{name}",model="none",'
                'outcome="gateway_error",status="500"} 1.0'
            ) in metrics
        assert "upstream_error" not in metrics
        assert in_flight(gateway) == 0
    finally:
        with sqlite3.connect(path) as db:
            for table in moved:
                db.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
        gateway.server.stop()
