"""The Responses API wire format: requests read into what each upstream format receives, whole
answers and streams rendered as the official schemas and the openai SDK's own stream
accumulator expect them."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
from openai.lib.streaming.responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from reapi.protocols import responses
from reapi.protocols.canonical import Thinking
from reapi.protocols.errors import InvalidRequest
from reapi.protocols.sse import SSEDecoder
from reapi.protocols.translate import (
    StreamTranslator,
    response_to_responses,
    responses_request_to,
    stream_to_responses,
)
from tests.schemas import assert_valid, assert_valid_event

from .conftest import decode_bytewise, sse, validate_anthropic_request

_EVENT = TypeAdapter(ResponseStreamEvent)

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}
# What Codex sends on every call: a function, a free-form tool, a namespace and hosted tools.
CODEX_TOOLS = [
    {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}},
    {
        "type": "custom",
        "name": "apply_patch",
        "description": "Edit files",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
    },
    {
        "type": "namespace",
        "name": "mcp_docs",
        "description": "Docs server",
        "tools": [{"type": "function", "name": "search", "parameters": {"type": "object"}}],
    },
    {"type": "web_search"},
    {"type": "file_search", "vector_store_ids": ["vs_1"]},
    {
        "type": "computer_use_preview",
        "display_width": 1,
        "display_height": 1,
        "environment": "linux",
    },
]


def request(**fields: Any) -> dict[str, Any]:
    body = {"model": "m-upstream", "input": "Hello", "max_output_tokens": 1000} | fields
    responses.validate_request(body)
    return body


def anthropic(body: dict[str, Any], **options: Any) -> dict[str, Any]:
    out = responses_request_to("anthropic", body, **options)
    validate_anthropic_request(out)
    return out


def openai_chat(body: dict[str, Any]) -> dict[str, Any]:
    out = responses_request_to("openai", body)
    assert_valid("CreateChatCompletionRequest", out)
    return out


# Requests --------------------------------------------------------------------------------


def test_plain_string_input_and_instructions() -> None:
    body = request(instructions="Be brief.", temperature=0.5, top_p=0.9)
    sent = anthropic(body)
    assert sent["system"] == "Be brief."
    assert sent["messages"] == [{"role": "user", "content": "Hello"}]
    assert sent["max_tokens"] == 1000 and sent["temperature"] == 0.5
    chat = openai_chat(body)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ]
    assert chat["max_tokens"] == 1000


def test_items_of_a_tool_round_trip_become_turns() -> None:
    body = request(
        input=[
            {"role": "developer", "content": "Use tools."},
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Weather?"}],
            },
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
            },
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "get_weather",
                "arguments": '{"city": "Rome"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [{"type": "input_text", "text": "21C"}],
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Paris 18C, Rome 21C."}],
            },
            {"role": "user", "content": "Thanks"},
        ],
        tools=[WEATHER],
    )
    sent = anthropic(body)
    assert sent["system"] == "Use tools."
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    assert [b["id"] for b in sent["messages"][1]["content"]] == ["call_1", "call_2"]
    assert [b["tool_use_id"] for b in sent["messages"][2]["content"]] == ["call_1", "call_2"]
    chat = openai_chat(body)
    assert [m["role"] for m in chat["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "user",
    ]
    assert len(chat["messages"][2]["tool_calls"]) == 2
    assert chat["messages"][4] == {"role": "tool", "tool_call_id": "call_2", "content": "21C"}


def test_images_and_files() -> None:
    png = "data:image/png;base64,iVBORw0KGgo="
    body = request(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": png, "detail": "auto"},
                    {"type": "input_image", "image_url": "https://example.com/a.jpg"},
                    {
                        "type": "input_file",
                        "filename": "a.pdf",
                        "file_data": "data:application/pdf;base64,JVBERi0=",
                    },
                ],
            }
        ]
    )
    blocks = anthropic(body)["messages"][0]["content"]
    assert [b["type"] for b in blocks] == ["text", "image", "image", "document"]
    assert blocks[1]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": "iVBORw0KGgo=",
    }
    parts = openai_chat(body)["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url", "file"]
    with pytest.raises(InvalidRequest) as refused:
        anthropic(
            request(input=[{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}])
        )
    assert refused.value.param == "input[0].content[0].image_url"


def test_codex_tools_flattened_wrapped_and_hosted_ones_dropped() -> None:
    body = request(tools=CODEX_TOOLS, tool_choice="auto", parallel_tool_calls=False)
    sent = anthropic(body)
    assert [t["name"] for t in sent["tools"]] == ["shell", "apply_patch", "mcp_docs__search"]
    patch = sent["tools"][1]
    assert patch["input_schema"]["required"] == ["input"]
    assert "start: /.+/" in patch["input_schema"]["properties"]["input"]["description"]
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    chat = openai_chat(body)
    assert [t["function"]["name"] for t in chat["tools"]] == [
        "shell",
        "apply_patch",
        "mcp_docs__search",
    ]
    assert chat["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    "choice",
    [{"type": "web_search_preview"}, {"type": "file_search"}, {"type": "mcp", "server_label": "x"}],
)
def test_forcing_a_hosted_tool_is_a_clear_400(choice: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as refused:
        anthropic(request(tools=CODEX_TOOLS, tool_choice=choice))
    assert refused.value.param == "tool_choice"
    assert choice["type"] in refused.value.message


def test_required_with_only_hosted_tools_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        anthropic(request(tools=[{"type": "web_search"}], tool_choice="required"))


def test_tool_choice_forms() -> None:
    sent = anthropic(
        request(tools=CODEX_TOOLS, tool_choice={"type": "custom", "name": "apply_patch"})
    )
    assert sent["tool_choice"] == {"type": "tool", "name": "apply_patch"}
    allowed = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "shell"}],
    }
    sent = anthropic(request(tools=CODEX_TOOLS, tool_choice=allowed))
    assert [t["name"] for t in sent["tools"]] == ["shell"] and sent["tool_choice"] == {
        "type": "any"
    }
    with pytest.raises(InvalidRequest):
        anthropic(request(tools=[WEATHER], tool_choice={"type": "function", "name": "nope"}))


def test_custom_and_namespaced_calls_in_input() -> None:
    body = request(
        tools=CODEX_TOOLS,
        input=[
            {"role": "user", "content": "fix it"},
            {
                "type": "custom_tool_call",
                "call_id": "c1",
                "name": "apply_patch",
                "input": "*** Begin",
            },
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
            {
                "type": "function_call",
                "call_id": "c2",
                "namespace": "mcp_docs",
                "name": "search",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "c2", "output": "found"},
        ],
    )
    messages = anthropic(body)["messages"]
    assert messages[1]["content"][0] == {
        "type": "tool_use",
        "id": "c1",
        "name": "apply_patch",
        "input": {"input": "*** Begin"},
    }
    assert messages[3]["content"][0]["name"] == "mcp_docs__search"


def test_reasoning_effort_budget_and_adaptive() -> None:
    body = request(
        reasoning={"effort": "medium", "summary": "auto"}, temperature=0.3, max_output_tokens=20000
    )
    sent = anthropic(body)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert "temperature" not in sent
    adaptive = anthropic(body, adaptive_thinking=True)
    assert adaptive["thinking"] == {"type": "adaptive"}
    assert adaptive["output_config"] == {"effort": "medium"}
    top = anthropic(
        request(reasoning={"effort": "xhigh"}, max_output_tokens=64000), adaptive_thinking=True
    )
    assert top["output_config"] == {"effort": "max"}
    assert "thinking" not in anthropic(request(reasoning={"effort": "none"}))
    assert openai_chat(body)["reasoning_effort"] == "medium"


def test_signed_reasoning_comes_back_as_a_signed_thinking_block() -> None:
    sealed = responses.seal_thinking(Thinking("Let me check.", "SIG=="))
    body = request(
        reasoning={"effort": "low"},
        max_output_tokens=8000,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather?"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": sealed},
            {"type": "function_call", "call_id": "t1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "t1", "output": "sunny"},
        ],
    )
    sent = anthropic(body)
    assert sent["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Let me check.",
        "signature": "SIG==",
    }
    # The signed block lets thinking continue through the tool loop.
    assert sent["thinking"]["type"] == "enabled"
    # Without it (reasoning from elsewhere), thinking is left out and the loop continues
    # without thinking, as Anthropic requires.
    body["input"][1] = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "thought"}],
        "encrypted_content": "gAAAA-opaque",
    }
    sent = anthropic(body)
    assert all(b["type"] != "thinking" for b in sent["messages"][1]["content"])
    assert "thinking" not in sent
    # An OpenAI chat upstream never receives reasoning back.
    assert all("reasoning" not in m for m in openai_chat(body)["messages"])


def test_structured_output() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    body = request(
        text={"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}}
    )
    assert anthropic(body)["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert openai_chat(body)["response_format"]["json_schema"]["schema"] == schema
    assert openai_chat(request(text={"format": {"type": "json_object"}}))["response_format"] == {
        "type": "json_object"
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": ""}, "model"),
        ({"input": None}, "input"),
        ({"input": []}, "input"),
        ({"input": 5}, "input"),
        ({"stream": "yes"}, "stream"),
        ({"instructions": ["x"]}, "instructions"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"truncation": "sometimes"}, "truncation"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"background": True}, "background"),
    ],
)
def test_invalid_requests_name_their_field(fields: dict[str, Any], param: str) -> None:
    body = {"model": "m", "input": "hi"} | fields
    with pytest.raises(InvalidRequest) as refused:
        responses.validate_request(body)
    assert refused.value.param == param


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"type": "item_reference", "id": "msg_1"}, "input[0].type"),
        ({"type": "web_search_call", "id": "ws"}, "input[0].type"),
        (
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"},
            "input[0].arguments",
        ),
        ({"role": "tool", "content": "x"}, "input[0].role"),
        (
            {
                "role": "assistant",
                "content": [{"type": "input_image", "image_url": "https://x/y.png"}],
            },
            "input[0].content[0].type",
        ),
    ],
)
def test_items_that_cannot_be_carried_are_refused(item: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        responses_request_to("anthropic", request(input=[item]))
    assert refused.value.param == param


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": [{"type": "reasoning", "id": "r", "summary": True}]}, "input[0].summary"),
        (
            {"tools": [{"type": "namespace", "name": "ns", "description": "d", "tools": True}]},
            "tools[0].tools",
        ),
        (
            {
                "tools": [WEATHER],
                "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": 1},
            },
            "tool_choice.tools",
        ),
    ],
)
def test_arrays_that_are_not_arrays_are_a_400(fields: dict[str, Any], param: str) -> None:
    body = request(**fields)
    responses.Echo.of(body, model="m")  # the echo of a bad request never fails first
    with pytest.raises(InvalidRequest) as refused:
        responses_request_to("anthropic", body)
    assert refused.value.param == param


def test_unknown_fields_are_accepted() -> None:
    body = request(
        client_metadata={"x": "y"},
        prompt_cache_key="abc",
        include=["reasoning.encrypted_content"],
        store=False,
        service_tier="auto",
    )
    assert anthropic(body)["messages"]


# Whole answers ----------------------------------------------------------------------------


def echo_of(body: dict[str, Any]) -> responses.Echo:
    return responses.Echo.of(body, model="client-model")


def test_anthropic_answer_with_thinking_text_and_calls() -> None:
    body = request(tools=CODEX_TOOLS, metadata={"ticket": "42"})
    answer = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "x",
        "content": [
            {"type": "thinking", "thinking": "Plan.", "signature": "S1"},
            {"type": "text", "text": "Patching."},
            {
                "type": "tool_use",
                "id": "tu_1",
                "name": "apply_patch",
                "input": {"input": "*** Begin"},
            },
            {"type": "tool_use", "id": "tu_2", "name": "mcp_docs__search", "input": {"q": "x"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 7},
    }
    out = response_to_responses(
        "anthropic", answer, echo_of(body), response_id="resp_1", created_at=9
    )
    assert_valid("Response", out)
    assert out["status"] == "completed" and out["model"] == "client-model"
    assert out["metadata"] == {"ticket": "42"}
    reasoning, message, custom, namespaced = out["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Plan."}]
    assert responses.unseal_thinking(reasoning["encrypted_content"]) == Thinking("Plan.", "S1")
    assert message["content"][0]["text"] == "Patching."
    assert custom == custom | {
        "type": "custom_tool_call",
        "call_id": "tu_1",
        "name": "apply_patch",
        "input": "*** Begin",
    }
    assert namespaced["namespace"] == "mcp_docs" and namespaced["name"] == "search"
    assert orjson.loads(namespaced["arguments"]) == {"q": "x"}
    assert out["usage"]["input_tokens"] == 15
    assert out["usage"]["input_tokens_details"]["cached_tokens"] == 5
    assert out["usage"]["total_tokens"] == 22


def test_openai_answer_cut_by_its_bound_is_incomplete() -> None:
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Once upon"},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1000, "total_tokens": 1003},
    }
    out = response_to_responses(
        "openai", answer, echo_of(request()), response_id="resp_2", created_at=9
    )
    assert_valid("Response", out)
    assert out["status"] == "incomplete"
    assert out["incomplete_details"] == {"reason": "max_output_tokens"}
    assert out["max_output_tokens"] == 1000


# Streams ----------------------------------------------------------------------------------


def pump(translator: StreamTranslator, upstream: bytes) -> list[bytes]:
    decoder = SSEDecoder()
    out: list[bytes] = []
    for byte in upstream:
        for event in decoder.feed(bytes([byte])):
            out += translator.feed(event)
    for event in decoder.close():
        out += translator.feed(event)
    return out + translator.close()


def client_events(chunks: list[bytes], body: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """Every event checked against the spec and the SDK's types, numbered in order, and the
    response the SDK's own accumulator builds from them."""
    state: ResponseStreamState[Any] = ResponseStreamState(
        input_tools=body.get("tools") or [], text_format=openai.omit
    )
    events = []
    for sse_event in decode_bytewise(chunks):
        data = orjson.loads(sse_event.data)
        assert sse_event.event == data["type"]
        assert_valid_event(data)
        state.handle_event(_EVENT.validate_python(data))
        events.append(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events, state


def anthropic_stream(*events: dict[str, Any]) -> bytes:
    return b"".join(sse(e, e["type"]) for e in events)


START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 1},
    },
}


def block(
    index: int, kind: str, delta: dict[str, Any] | None, start: dict[str, Any]
) -> list[dict[str, Any]]:
    out = [{"type": "content_block_start", "index": index, "content_block": start}]
    if delta is not None:
        out.append({"type": "content_block_delta", "index": index, "delta": delta})
    return out


def test_anthropic_stream_with_thinking_text_and_a_custom_call() -> None:
    body = request(tools=CODEX_TOOLS, stream=True)
    upstream = anthropic_stream(
        START,
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Hmm."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "SIG"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "lo"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "tu_1", "name": "apply_patch", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"input": "*** Be'},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": 'gin"}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "content_block_start",
            "index": 3,
            "content_block": {"type": "tool_use", "id": "tu_2", "name": "shell", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 3,
            "delta": {"type": "input_json_delta", "partial_json": '{"cmd": ["ls"]}'},
        },
        {"type": "content_block_stop", "index": 3},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 30},
        },
        {"type": "message_stop"},
    )
    translator = stream_to_responses(
        "anthropic", echo_of(body), response_id="resp_s1", created_at=5
    )
    events, state = client_events(pump(translator, upstream), body)
    assert translator.finished and translator.usage is not None
    types = [e["type"] for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in types
    assert (
        types.count("response.output_item.added") == types.count("response.output_item.done") == 4
    )
    final = events[-1]["response"]
    assert_valid("Response", final)
    reasoning, message, custom, shell = final["output"]
    assert responses.unseal_thinking(reasoning["encrypted_content"]) == Thinking("Hmm.", "SIG")
    assert message["content"][0]["text"] == "Hello"
    assert custom["type"] == "custom_tool_call" and custom["input"] == "*** Begin"
    assert shell["type"] == "function_call" and orjson.loads(shell["arguments"]) == {"cmd": ["ls"]}
    assert final["usage"]["input_tokens"] == 20 and final["usage"]["output_tokens"] == 30
    # The SDK's own accumulator built the same answer from the events.
    sdk = state._completed_response
    assert sdk is not None and sdk.output_text == "Hello"
    assert [item.type for item in sdk.output] == [i["type"] for i in final["output"]]


def openai_stream(*chunks: dict[str, Any]) -> bytes:
    return b"".join(sse(c) for c in chunks) + b"data: [DONE]\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


USAGE_CHUNK = {
    "id": "c1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "x",
    "choices": [],
    "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15},
}


def test_openai_stream_text_and_parallel_calls() -> None:
    body = request(tools=[WEATHER], stream=True)
    upstream = openai_stream(
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "Two cities."}),
        chunk({"content": "Checking."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Paris"}'}}]}),
        chunk({}, "tool_calls"),
        USAGE_CHUNK,
    )
    translator = stream_to_responses("openai", echo_of(body), response_id="resp_s2", created_at=5)
    events, _ = client_events(pump(translator, upstream), body)
    final = events[-1]["response"]
    assert events[-1]["type"] == "response.completed"
    kinds = [item["type"] for item in final["output"]]
    assert kinds == ["reasoning", "message", "function_call", "function_call"]
    assert [orjson.loads(i["arguments"]) for i in final["output"][2:]] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert "encrypted_content" not in final["output"][0]
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [d["arguments"] for d in done] == ['{"city":"Paris"}', '{"city":"Rome"}']
    assert final["usage"]["total_tokens"] == 15


def test_stream_cut_by_its_bound_ends_incomplete() -> None:
    upstream = openai_stream(chunk({"content": "Once"}), chunk({}, "length"), USAGE_CHUNK)
    translator = stream_to_responses(
        "openai", echo_of(request()), response_id="resp_s3", created_at=5
    )
    events, _ = client_events(pump(translator, upstream), request())
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_broken_stream_ends_with_error_then_failed() -> None:
    upstream = b"".join(sse(c) for c in [chunk({"content": "Once upon"})])
    translator = stream_to_responses(
        "openai", echo_of(request()), response_id="resp_s4", created_at=5
    )
    out = pump(translator, upstream)
    assert not translator.finished
    out += translator.error("The upstream connection broke.")
    events = [orjson.loads(e.data) for e in decode_bytewise(out)]
    for event in events:
        assert_valid_event(event)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["code"] == "upstream_stream_broken"
    assert events[-1]["response"]["error"]["code"] == "server_error"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert translator.error("again") == []


def test_upstream_error_event_before_anything_still_starts_the_response() -> None:
    upstream = sse(
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, "error"
    )
    translator = stream_to_responses(
        "anthropic", echo_of(request()), response_id="resp_s5", created_at=5
    )
    events = [orjson.loads(e.data) for e in decode_bytewise(pump(translator, upstream))]
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert events[-1]["response"]["error"] == {
        "code": "rate_limit_exceeded",
        "message": "slow down",
    }
