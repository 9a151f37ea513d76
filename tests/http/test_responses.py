"""``POST /v1/responses`` through a real gateway with the official openai SDK, against both kinds
of channel (an OpenAI chat upstream and an Anthropic one, both translated): plain and streamed
answers checked against the official spec, tool round trips with the whole input replayed,
reasoning that survives a round trip, images, structured output, billing and errors."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from pydantic import BaseModel
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from reapi.config import build_config
from reapi.money import usd_to_units
from reapi.services.billing import UsageQuery
from reapi.settings import Settings
from tests.clients import openai_client
from tests.conftest import Gateway, start_gateway
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.schemas import assert_valid, assert_valid_event, use_spec

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
CALL = [
    {
        "id": "call_w1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
]
# model -> what its channel speaks
MODELS = {"gpt-5.5": "/v1/chat/completions", "claude-sonnet-4-6": "/v1/messages"}
both_channels = pytest.mark.parametrize("model", list(MODELS))


@pytest.fixture(autouse=True)
def _spec(openai_spec: dict[str, Any]) -> None:
    use_spec(openai_spec)


@pytest.fixture(scope="module")
def gw(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Gateway]:
    config = build_config(
        {
            "channels": [
                {
                    "name": "anthropic-direct",
                    "type": "anthropic",
                    "base_url": fake_openai.anthropic_url,
                    "api_key": "sk-ant-upstream",
                    "models": ["claude-sonnet-4-6", "claude-opus-4-7"],
                },
                {
                    "name": "openai-compatible",
                    "type": "openai",
                    "base_url": fake_openai.base_url,
                    "api_key": "sk-oa-upstream",
                    "models": ["gpt-5.5"],
                },
            ],
            "models": {
                "gpt-5.5": {"input_per_mtok": "1.25", "output_per_mtok": "10.00"},
                "claude-opus-4-7": {"input_per_mtok": "5", "output_per_mtok": "25"},
                "claude-sonnet-4-6": {
                    "input_per_mtok": "3",
                    "output_per_mtok": "15",
                    "cached_input_per_mtok": "0.30",
                },
            },
        }
    )
    gateway = start_gateway(Settings(database_url=database_url), config)
    yield gateway
    gateway.server.stop()


def client(gateway: Gateway, key: str | None = None) -> openai.OpenAI:
    return openai_client(api_key=key or gateway.key(), base_url=gateway.url + "/v1", max_retries=0)


def post(gateway: Gateway, key: str, **body: Any) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json=body,
        timeout=30,
    )


def events_of(raw: bytes) -> list[dict[str, Any]]:
    """Every event of a stream, checked against the spec: its SSE name is its type and the
    sequence numbers count from 0."""
    events = []
    for block in raw.decode().split("\n\n"):
        lines = block.split("\n")
        if not block or lines[0].startswith(":"):
            continue
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        data = orjson.loads(lines[1][6:])
        assert lines[0][7:] == data["type"]
        assert_valid_event(data)
        events.append(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def records(gateway: Gateway, name: str) -> list[Any]:
    return list(gateway.billing(lambda b: b.usage(name, UsageQuery())))


# Plain and streamed ----------------------------------------------------------------------


@both_channels
def test_plain_answer_is_the_spec_response_and_is_billed(
    gw: Gateway, upstream: FakeOpenAI, model: str
) -> None:
    name, key = gw.user(credit="5")
    raw = client(gw, key).responses.with_raw_response.create(
        model=model,
        instructions="Be brief.",
        input="Hello",
        metadata={"ticket": "7"},
        extra_body={"client_metadata": {"session": "x"}},  # what Codex adds
    )
    response = raw.parse()
    assert_valid("Response", orjson.loads(raw.http_response.content))
    assert response.status == "completed" and response.model == model
    assert response.output_text == "Hello! How can I help you today?"
    assert response.metadata == {"ticket": "7"}
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 9)
    assert raw.headers["x-request-id"]
    cost = raw.headers["x-reapi-cost"]
    [sent] = upstream.requests
    assert sent.path == MODELS[model]
    if model == "gpt-5.5":
        assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
        # Without max_output_tokens the bound is the model's own maximum.
        assert sent.body["max_completion_tokens"] == 128_000
        assert "max_tokens" not in sent.body
    else:
        assert sent.body["system"] == "Be brief."
        assert sent.body["max_tokens"] == 128_000
    assert "client_metadata" not in sent.body and "metadata" not in sent.body
    [record] = records(gw, name)
    assert record.request_id == raw.headers["x-request-id"]
    assert (record.prompt_tokens, record.completion_tokens, record.outcome) == (12, 9, "ok")
    assert gw.balance(name).balance == usd_to_units("5") - usd_to_units(cost)
    assert gw.balance(name).held == 0


@both_channels
def test_streamed_answer_is_the_full_event_sequence_with_the_cost_before_the_end(
    gw: Gateway, upstream: FakeOpenAI, model: str
) -> None:
    name, key = gw.user(credit="5")
    response = post(gw, key, model=model, input="Hello", stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = events_of(response.content)
    types = [e["type"] for e in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 7,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Hello! How can I help you today?"
    assert final["usage"]["input_tokens"] == 12 and final["usage"]["output_tokens"] == 9
    cost = response.content.split(b": x-reapi-cost ")[1].split(b"\n")[0].decode()
    assert response.content.endswith(b"\n\n")
    assert b": x-reapi-cost " + cost.encode() + b"\n\nevent: response.completed" in response.content
    assert gw.balance(name).balance == usd_to_units("5") - usd_to_units(cost)
    assert records(gw, name)[0].outcome == "ok"


@both_channels
def test_sdk_stream_and_stream_helper(gw: Gateway, upstream: FakeOpenAI, model: str) -> None:
    sdk = client(gw)
    deltas = [
        event.delta
        for event in sdk.responses.create(model=model, input="Hello", stream=True)
        if event.type == "response.output_text.delta"
    ]
    assert "".join(deltas) == "Hello! How can I help you today?"
    with sdk.responses.stream(model=model, input="Hello") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == final.output_text == "Hello! How can I help you today?"
    assert final.usage is not None and final.usage.total_tokens == 21


# Tools, reasoning, images, structured output ----------------------------------------------


@both_channels
@pytest.mark.parametrize("stream", [False, True])
def test_function_tool_round_trip_with_the_input_replayed(
    gw: Gateway, upstream: FakeOpenAI, model: str, stream: bool
) -> None:
    sdk = client(gw)
    upstream.enqueue(
        Reply(tool_calls=CALL, finish_reason="tool_calls"), Reply(text="18C in Paris.")
    )
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        with sdk.responses.stream(model=model, input=history, tools=[WEATHER]) as events:  # type: ignore[arg-type]
            first = events.get_final_response()
    else:
        first = sdk.responses.create(model=model, input=history, tools=[WEATHER])  # type: ignore[arg-type]
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id == "call_w1"
    assert orjson.loads(call.arguments) == {"city": "Paris"}
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "18C"})
    second = sdk.responses.create(model=model, input=history, tools=[WEATHER])  # type: ignore[arg-type]
    assert second.output_text == "18C in Paris."
    first_sent, second_sent = upstream.requests
    if model == "gpt-5.5":
        assert first_sent.body["tools"][0]["function"]["name"] == "get_weather"
        assistant, tool = second_sent.body["messages"][1:]
        assert assistant["tool_calls"][0]["id"] == "call_w1"
        assert tool == {"role": "tool", "tool_call_id": "call_w1", "content": "18C"}
    else:
        assert first_sent.body["tools"][0]["name"] == "get_weather"
        assistant, result = second_sent.body["messages"][1:]
        assert assistant["content"] == [
            {"type": "tool_use", "id": "call_w1", "name": "get_weather", "input": {"city": "Paris"}}
        ]
        assert result["content"] == [
            {"type": "tool_result", "tool_use_id": "call_w1", "content": "18C"}
        ]


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_reasoning_survives_a_stateless_round_trip(
    gw: Gateway, upstream: FakeOpenAI, stream: bool
) -> None:
    sdk = client(gw)
    upstream.enqueue(
        Reply(thinking="Paris first.", tool_calls=CALL, finish_reason="tool_calls"),
        Reply(text="Sunny."),
    )
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    options: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "tools": [WEATHER],
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "max_output_tokens": 20_000,
    }
    if stream:
        with sdk.responses.stream(input=history, **options) as events:
            first = events.get_final_response()
    else:
        first = sdk.responses.create(input=history, **options)
    reasoning, call = first.output
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "Paris first."
    assert call.type == "function_call"
    assert reasoning.encrypted_content
    assert upstream.requests[0].body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": "call_w1", "output": "sunny"})
    assert sdk.responses.create(input=history, **options).output_text == "Sunny."
    sent = upstream.requests[1].body
    assert sent["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Paris first.",
        "signature": "sig:Paris first.",
    }
    # The signed block lets the model keep thinking through the tool loop.
    assert sent["thinking"]["type"] == "enabled"


def test_adaptive_only_models_get_an_effort(gw: Gateway, upstream: FakeOpenAI) -> None:
    client(gw).responses.create(model="claude-opus-4-7", input="Hi", reasoning={"effort": "high"})
    sent = upstream.requests[0].body
    assert sent["thinking"] == {"type": "adaptive"}
    assert sent["output_config"] == {"effort": "high"}


@both_channels
def test_image_input_reaches_the_upstream(gw: Gateway, upstream: FakeOpenAI, model: str) -> None:
    client(gw).responses.create(
        model=model,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": PNG, "detail": "auto"},
                ],
            }
        ],
    )
    content = upstream.requests[0].body["messages"][0]["content"]
    if model == "gpt-5.5":
        assert content[1] == {"type": "image_url", "image_url": {"url": PNG}}
    else:
        assert content[1]["source"]["media_type"] == "image/png"


@both_channels
def test_structured_output(gw: Gateway, upstream: FakeOpenAI, model: str) -> None:
    upstream.enqueue(Reply(text='{"city": "Paris"}'))
    schema = WEATHER["parameters"]
    response = client(gw).responses.create(
        model=model,
        input="Where?",
        text={"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}},  # type: ignore[typeddict-item]
    )
    assert orjson.loads(response.output_text) == {"city": "Paris"}
    sent = upstream.requests[0].body
    if model == "gpt-5.5":
        assert sent["response_format"]["json_schema"]["schema"] == schema
    else:
        assert sent["output_config"]["format"]["schema"] == schema
    # The SDK's parse helper sends its model's schema and reads the answer back into it.
    upstream.enqueue(Reply(text='{"city": "Rome"}'))
    parsed = client(gw).responses.parse(model=model, input="Where?", text_format=Place)
    assert parsed.output_parsed == Place(city="Rome")
    sent = upstream.requests[1].body
    sent_schema = (
        sent["response_format"]["json_schema"]["schema"]
        if model == "gpt-5.5"
        else sent["output_config"]["format"]["schema"]
    )
    assert sent_schema["properties"] == {"city": {"title": "City", "type": "string"}}


class Place(BaseModel):
    city: str


def test_codex_style_tools_are_accepted(gw: Gateway, upstream: FakeOpenAI) -> None:
    upstream.enqueue(
        Reply(
            tool_calls=[
                {
                    "id": "call_p",
                    "type": "function",
                    "function": {
                        "name": "apply_patch",
                        "arguments": '{"input": "*** Begin Patch"}',
                    },
                }
            ],
            finish_reason="tool_calls",
        )
    )
    tools: list[Any] = [
        {"type": "custom", "name": "apply_patch", "description": "Edit files"},
        {"type": "web_search"},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
    ]
    response = client(gw).responses.create(model="gpt-5.5", input="fix", tools=tools)
    [call] = response.output
    assert call.type == "custom_tool_call" and call.input == "*** Begin Patch"
    assert [t["function"]["name"] for t in upstream.requests[0].body["tools"]] == ["apply_patch"]


# Bounds and errors ------------------------------------------------------------------------


@both_channels
def test_answer_cut_by_max_output_tokens_is_incomplete(
    gw: Gateway, upstream: FakeOpenAI, model: str
) -> None:
    upstream.enqueue(Reply(text="Once upon", finish_reason="length"), Reply(finish_reason="length"))
    response = client(gw).responses.create(model=model, input="Story", max_output_tokens=50)
    assert response.status == "incomplete" and response.max_output_tokens == 50
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    field = "max_completion_tokens" if model == "gpt-5.5" else "max_tokens"
    assert upstream.requests[0].body[field] == 50
    events = events_of(
        post(gw, gw.key(), model=model, input="x", max_output_tokens=50, stream=True).content
    )
    assert events[-1]["type"] == "response.incomplete"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "gpt-5.5"}, 400, "input"),
        ({"model": "gpt-5.5", "input": "x", "max_output_tokens": 0}, 400, "max_output_tokens"),
        ({"model": "gpt-5.5", "input": "x", "max_output_tokens": 10**6}, 400, "max_output_tokens"),
        ({"model": "gpt-5.5", "input": "x", "temperature": 3}, 400, "temperature"),
        (
            {"model": "gpt-5.5", "input": "x", "previous_response_id": "resp_1"},
            400,
            "previous_response_id",
        ),
        (
            {
                "model": "gpt-5.5",
                "input": "x",
                "tools": [{"type": "web_search"}],
                "tool_choice": {"type": "web_search"},
            },
            400,
            "tool_choice",
        ),
        ({"model": "no-such-model", "input": "x"}, 404, "model"),
    ],
)
def test_bad_requests_are_refused_in_the_openai_envelope_without_an_upstream_call(
    gw: Gateway, upstream: FakeOpenAI, body: dict[str, Any], status: int, param: str
) -> None:
    name, key = gw.user(credit="5")
    response = post(gw, key, **body)
    assert response.status_code == status
    assert response.headers["x-request-id"]
    error = response.json()
    assert_valid("ErrorResponse", error)
    assert error["error"]["param"] == param
    assert upstream.requests == []
    assert gw.balance(name).balance == usd_to_units("5")


def test_sdk_raises_the_documented_errors(gw: Gateway, upstream: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client(gw).responses.create(model="gpt-5.5", input=[{"type": "item_reference", "id": "x"}])
    assert "item references" in raised.value.message
    with pytest.raises(openai.AuthenticationError):
        client(gw, "sk-wrong").responses.create(model="gpt-5.5", input="x")
    _, poor = gw.user(credit="0.0001")
    with pytest.raises(openai.APIStatusError) as refused:
        client(gw, poor).responses.create(model="gpt-5.5", input="x")
    assert refused.value.status_code == 402


@both_channels
def test_upstream_failure_is_free(gw: Gateway, upstream: FakeOpenAI, model: str) -> None:
    name, key = gw.user(credit="5")
    upstream.enqueue(Fail(500))
    with pytest.raises(openai.APIStatusError) as raised:
        client(gw, key).responses.create(model=model, input="x")
    assert raised.value.status_code == 502
    assert len(upstream.requests) == 1
    assert gw.balance(name).balance == usd_to_units("5") and gw.balance(name).held == 0


@both_channels
def test_stream_broken_mid_answer_fails_and_is_free(
    gw: Gateway, upstream: FakeOpenAI, model: str
) -> None:
    name, key = gw.user(credit="5")
    upstream.enqueue(Reply(text="a b c d e f", break_after=5))
    response = post(gw, key, model=model, input="x", stream=True)
    events = events_of(response.content)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["code"] == "upstream_stream_broken"
    assert "safe to retry" in events[-2]["message"]
    assert events[-1]["response"]["status"] == "failed"
    assert b"x-reapi-cost" not in response.content
    assert gw.balance(name).balance == usd_to_units("5")
    assert records(gw, name)[0].outcome == "upstream_broke"
    upstream.enqueue(Reply(text="a b c d e f", break_after=5))
    # The SDK hands both events over as they are, as it does OpenAI's own.
    seen = list(client(gw, key).responses.create(model=model, input="x", stream=True))
    assert [e.type for e in seen[-2:]] == ["error", "response.failed"]


def test_websocket_attempt_gets_426_in_the_openai_envelope(gw: Gateway) -> None:
    url = gw.url.replace("http://", "ws://") + "/v1/responses"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers={"Authorization": f"Bearer {gw.key()}"}).close()
    assert refused.value.response.status_code == 426
    error = orjson.loads(refused.value.response.body or b"")
    assert_valid("ErrorResponse", error)
    assert error["error"]["code"] == "websocket_not_supported"
    plain = httpx.get(gw.url + "/v1/responses")
    assert plain.status_code == 405 and plain.headers["allow"] == "POST"


def codex_request(model: str, history: list[Any]) -> dict[str, Any]:
    """What Codex CLI sends on every turn (its shape, abridged): developer instructions as an
    item, a shell function, the free-form apply_patch tool, hosted tools, stateless reasoning."""
    return {
        "model": model,
        "instructions": "You are Codex, a coding agent.",
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [
                    {"type": "input_text", "text": "<permissions>workspace-write</permissions>"}
                ],
            },
            *history,
        ],
        "tools": [
            {
                "type": "function",
                "name": "shell",
                "description": "Runs a shell command.",
                "strict": False,
                "parameters": {
                    "type": "object",
                    "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                    "required": ["command"],
                    "additionalProperties": False,
                },
            },
            {
                "type": "custom",
                "name": "apply_patch",
                "description": "Edit files with a patch.",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"},
            },
            {"type": "web_search"},
            {"type": "local_shell"},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0196-session",
        "text": {"verbosity": "medium"},
        "client_metadata": {"x-codex-turn": "1"},
    }


@both_channels
def test_a_codex_turn_with_a_shell_call_and_its_replay(
    gw: Gateway, upstream: FakeOpenAI, model: str
) -> None:
    key = gw.key()
    shell = [
        {
            "id": "call_sh",
            "type": "function",
            "function": {"name": "shell", "arguments": '{"command": ["ls"]}'},
        }
    ]
    upstream.enqueue(
        Reply(thinking="List files.", tool_calls=shell, finish_reason="tool_calls"),
        Reply(text="There is one file: a.txt"),
    )
    history: list[Any] = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ls"}]}
    ]
    first = events_of(post(gw, key, **codex_request(model, history)).content)
    assert first[-1]["type"] == "response.completed"
    output = first[-1]["response"]["output"]
    assert [item["type"] for item in output] == ["reasoning", "function_call"]
    call = output[1]
    assert call["name"] == "shell" and orjson.loads(call["arguments"]) == {"command": ["ls"]}
    history += [
        *output,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "a.txt"},
    ]
    second = events_of(post(gw, key, **codex_request(model, history)).content)
    answer = second[-1]["response"]["output"][-1]["content"][0]["text"]
    assert answer == "There is one file: a.txt"
    sent = upstream.requests[1].body
    names = [t["function"]["name"] if "function" in t else t["name"] for t in sent["tools"]]
    assert names == ["shell", "apply_patch"]
    if model == "claude-sonnet-4-6":
        thinking, tool_use = sent["messages"][1]["content"]
        assert thinking == {
            "type": "thinking",
            "thinking": "List files.",
            "signature": "sig:List files.",
        }
        assert tool_use["input"] == {"command": ["ls"]}
        assert sent["thinking"]["type"] == "enabled"
        assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    else:
        assert sent["reasoning_effort"] == "medium" and sent["parallel_tool_calls"] is False
        assert [m["role"] for m in sent["messages"]] == [
            "system",
            "system",
            "user",
            "assistant",
            "tool",
        ]


def test_the_chat_endpoint_sends_adaptive_thinking_too(gw: Gateway, upstream: FakeOpenAI) -> None:
    client(gw).chat.completions.create(
        model="claude-opus-4-7",
        messages=[{"role": "user", "content": "Hi"}],
        reasoning_effort="low",
        max_completion_tokens=4000,
    )
    sent = upstream.requests[0].body
    assert sent["thinking"] == {"type": "adaptive"} and sent["output_config"] == {"effort": "low"}


def test_group_is_used_and_never_sent_upstream(gw: Gateway, upstream: FakeOpenAI) -> None:
    name, key = gw.user(credit="5")
    client(gw, key).responses.create(model="gpt-5.5", input="x", extra_body={"group": "default"})
    assert "group" not in upstream.requests[0].body
    [record] = records(gw, name)
    assert record.group == "default" and record.endpoint == "responses"
    response = post(gw, key, model="gpt-5.5", input="x", group="nope")
    assert response.status_code == 400 and response.json()["error"]["param"] == "group"


def test_client_leaving_mid_stream_pays_for_what_was_produced(
    gw: Gateway, upstream: FakeOpenAI
) -> None:
    name, key = gw.user(credit="5")
    upstream.enqueue(Reply(text=" ".join(["token"] * 300), interval=0.02))
    with httpx.stream(
        "POST",
        gw.url + "/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-5.5", "input": "Hello", "stream": True},
    ) as response:
        lines = response.iter_lines()
        for _ in range(30):
            next(lines)
    deadline = time.monotonic() + 5
    while not (rows := records(gw, name)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [row] = rows
    assert row.outcome == "client_gone" and row.usage_estimated is True
    while not upstream.requests[0].disconnected:
        assert time.monotonic() < deadline, "the upstream kept streaming to nobody"
        time.sleep(0.05)
    # The same rule as the other endpoints: the prompt's strings ("Hello", 5 characters) are
    # 2 tokens; the output is counted from the deltas received, at 4 characters per token.
    assert row.prompt_tokens == 2
    assert 2 <= row.completion_tokens < 300 * 6 // 4
    cost = 2 * 1250 + row.completion_tokens * 10_000
    assert gw.balance(name).balance == usd_to_units("5") - cost
    assert gw.balance(name).held == 0
