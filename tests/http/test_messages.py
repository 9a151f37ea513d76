"""Both SDKs against both kinds of channel: every (endpoint, channel type) pair, streaming and
not, tools and images, errors in each SDK's own envelope, and what the upstream received."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from reapi.config import build_config
from reapi.settings import Settings
from tests.clients import anthropic_client, openai_client
from tests.conftest import Gateway, start_gateway
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.schemas import assert_valid, use_spec

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CALLS = [
    {
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'},
    },
    {
        "id": "toolu_2",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    },
]


@pytest.fixture(autouse=True)
def _spec(openai_spec: dict[str, Any]) -> None:
    use_spec(openai_spec)


@pytest.fixture(scope="module")
def both(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Gateway]:
    config = build_config(
        {
            "channels": [
                {
                    "name": "anthropic-direct",
                    "type": "anthropic",
                    "base_url": fake_openai.anthropic_url,
                    "api_key": "sk-ant-upstream",
                    "models": ["claude-sonnet-4-6"],
                },
                {
                    "name": "openai-compatible",
                    "type": "openai",
                    "base_url": fake_openai.base_url,
                    "api_key": "sk-oa-upstream",
                    "models": ["gpt-5.5", "claude-opus-4-7"],
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


def claude(gateway: Gateway, key: str | None = None) -> anthropic.Anthropic:
    return anthropic_client(api_key=key or gateway.key(), base_url=gateway.url, max_retries=0)


def gpt(gateway: Gateway, key: str | None = None) -> openai.OpenAI:
    return openai_client(api_key=key or gateway.key(), base_url=gateway.url + "/v1", max_retries=0)


# Anthropic endpoint x Anthropic channel ------------------------------------------------------


def test_native_messages_relay(both: Gateway, upstream: FakeOpenAI) -> None:
    client = claude(both)
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=1024,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hello"}],
        extra_body={"context_management": {"edits": []}, "output_config": {"effort": "low"}},
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14,context-1m-2025-08-07"},
    )
    assert message.model == "claude-sonnet-4-6"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.input_tokens == 12 and message.usage.output_tokens == 9
    [sent] = upstream.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-upstream"
    # The client's own API version is forwarded (this SDK sends a newer date than 2023-06-01).
    assert sent.headers["anthropic-version"] == client.default_headers["anthropic-version"]
    assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,context-1m-2025-08-07"
    # Unknown fields reach an Anthropic channel untouched.
    assert sent.body["context_management"] == {"edits": []}
    assert sent.body["output_config"] == {"effort": "low"}
    assert sent.body["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_native_stream_and_exact_cost(both: Gateway, upstream: FakeOpenAI) -> None:
    name, key = both.user(credit="1")
    upstream.enqueue(
        Reply(
            text="one two three",
            prompt_tokens=1000,
            cached_tokens=800,
            completion_tokens=100,
            split_bytes=9,
        )
    )
    with claude(both, key).messages.stream(
        model="claude-sonnet-4-6", max_tokens=1024, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "one two three"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 100
    # 200 uncached x $3 + 800 cached x $0.30 + 100 out x $15, per 1M tokens
    assert both.balance(name).balance == 10**9 - 2_340_000


def test_claude_code_style_request(both: Gateway, upstream: FakeOpenAI) -> None:
    """Query string, old API version date, a comma list of betas, Bearer auth, a system role
    inside messages, adaptive thinking and tools with extra keys: all accepted."""
    tools = [
        {
            **WEATHER,
            "defer_loading": True,
            "input_schema": {
                **WEATHER["input_schema"],
                "$schema": "https://json-schema.org/draft/2020-12/schema",
            },
        }
    ]
    response = httpx.post(
        both.url + "/v1/messages?beta=true",
        headers={
            "Authorization": f"Bearer {both.key()}",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "claude-code-20250219,oauth-2025-04-20",
        },
        json={
            "model": "claude-sonnet-4-6",
            "max_tokens": 32000,
            "stream": True,
            "thinking": {"type": "adaptive"},
            "metadata": {"user_id": "user_abc"},
            "tools": tools,
            "system": [
                {
                    "type": "text",
                    "text": "You are Claude Code.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            "messages": [
                {"role": "system", "content": "extra system note"},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            ],
        },
    )
    assert response.status_code == 200
    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert ": x-reapi-cost 0.000171\n\nevent: message_stop" in response.text
    assert upstream.requests[0].headers["anthropic-version"] == "2023-06-01"
    assert upstream.requests[0].body["thinking"] == {"type": "adaptive"}
    assert upstream.requests[0].body["tools"][0]["defer_loading"] is True
    assert httpx.head(both.url + "/").status_code == 200
    assert httpx.head(both.url + "/api/hello").status_code == 200


# Anthropic endpoint x OpenAI channel ---------------------------------------------------------


def test_messages_to_an_openai_channel(both: Gateway, upstream: FakeOpenAI) -> None:
    name, key = both.user(credit="1")
    message = claude(both, key).messages.create(
        model="gpt-5.5",
        max_tokens=300,
        system="Be brief.",
        stop_sequences=["END"],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                ],
            },
        ],
    )
    assert message.model == "gpt-5.5" and message.content[0].type == "text"
    assert message.stop_reason == "end_turn"
    [sent] = upstream.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
    parts = sent.body["messages"][1]["content"]
    assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{PNG}"
    assert sent.body["stop"] == ["END"]
    assert sent.body["max_completion_tokens"] == 300
    assert both.balance(name).balance == 10**9 - (12 * 1250 + 9 * 10_000)


def test_messages_stream_of_tool_calls_from_an_openai_channel(
    both: Gateway, upstream: FakeOpenAI
) -> None:
    upstream.enqueue(Reply(tool_calls=CALLS, finish_reason="tool_calls"))
    with claude(both).messages.stream(
        model="gpt-5.5",
        max_tokens=300,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather in Tokyo and Paris?"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [(u.id, u.name, u.input) for u in uses] == [
        ("toolu_1", "get_weather", {"city": "Tokyo"}),
        ("toolu_2", "get_weather", {"city": "Paris"}),
    ]
    assert (
        upstream.requests[0].body["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    )
    assert upstream.requests[0].body["stream_options"] == {"include_usage": True}


# OpenAI endpoint x Anthropic channel ---------------------------------------------------------


def test_chat_completions_to_an_anthropic_channel(both: Gateway, upstream: FakeOpenAI) -> None:
    key = both.key()
    response = httpx.post(
        both.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "claude-sonnet-4-6",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Describe"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    ],
                },
            ],
            "stop": "END",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert_valid("CreateChatCompletionResponse", body)
    assert body["model"] == "claude-sonnet-4-6"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == 12 and body["usage"]["completion_tokens"] == 9
    [sent] = upstream.requests
    assert sent.path == "/v1/messages"
    assert sent.body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert sent.body["max_tokens"] == 4096
    assert sent.body["stop_sequences"] == ["END"]
    image = sent.body["messages"][0]["content"][1]
    assert image == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.png"},
    }


def test_chat_stream_with_tools_from_an_anthropic_channel(
    both: Gateway, upstream: FakeOpenAI
) -> None:
    upstream.enqueue(Reply(tool_calls=CALLS, finish_reason="tool_calls", split_bytes=5))
    response = httpx.post(
        both.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {both.key()}"},
        json={
            "model": "claude-sonnet-4-6",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Weather?"}],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "parameters": WEATHER["input_schema"]},
                }
            ],
            "tool_choice": "required",
        },
    )
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert response.text.endswith(": x-reapi-cost 0.000171\n\ndata: [DONE]\n\n")
    chunks = [orjson.loads(e) for e in events[:-1]]
    arguments: dict[int, str] = {}
    ids: dict[int, str] = {}
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or []:
                arguments[call["index"]] = arguments.get(call["index"], "") + call["function"].get(
                    "arguments", ""
                )
                if call.get("id"):
                    ids[call["index"]] = call["id"]
    assert ids == {0: "toolu_1", 1: "toolu_2"}
    assert {i: orjson.loads(a) for i, a in arguments.items()} == {
        0: {"city": "Tokyo"},
        1: {"city": "Paris"},
    }
    finishes = [
        c["choices"][0]["finish_reason"]
        for c in chunks
        if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finishes == ["tool_calls"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 9
    assert upstream.requests[0].body["tool_choice"] == {"type": "any"}


def test_openai_sdk_multi_turn_tool_results_to_anthropic(
    both: Gateway, upstream: FakeOpenAI
) -> None:
    gpt(both).chat.completions.create(
        model="claude-sonnet-4-6",
        messages=[
            {"role": "user", "content": "Weather in Tokyo and Paris?"},
            {"role": "assistant", "content": None, "tool_calls": CALLS},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "Sunny"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Rain"},
        ],
    )
    turns = upstream.requests[0].body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["type"] for b in turns[1]["content"]] == ["tool_use", "tool_use"]
    assert [(b["type"], b["tool_use_id"]) for b in turns[2]["content"]] == [
        ("tool_result", "toolu_1"),
        ("tool_result", "toolu_2"),
    ]


# Errors in the Anthropic envelope ------------------------------------------------------------


def test_anthropic_errors_use_the_sdk_envelope(both: Gateway, upstream: FakeOpenAI) -> None:
    client = claude(both)
    with pytest.raises(anthropic.BadRequestError) as missing:
        httpx_body = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "Hi"}]}
        client.post("/v1/messages", body=httpx_body, cast_to=httpx.Response)
    assert missing.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError):
        claude(both, "sk-wrong").messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model="claude-9", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    _, broke = both.user(credit=None)
    with pytest.raises(anthropic.APIStatusError) as unpaid:
        claude(both, broke).messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert unpaid.value.status_code == 402
    assert unpaid.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    upstream.enqueue(
        Fail(529, body={"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    )
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        client.messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert overloaded.value.status_code == 529
    assert len(upstream.requests) == 1


def test_upstream_breaking_off_is_an_error_event(both: Gateway, upstream: FakeOpenAI) -> None:
    name, key = both.user(credit="1")
    upstream.enqueue(Reply(text="a b c d e f g h", break_after=5))
    with (
        pytest.raises(anthropic.APIError),
        claude(both, key).messages.stream(
            model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
        ) as stream,
    ):
        for _ in stream.text_stream:
            pass
    assert both.balance(name).balance == 10**9  # not charged
    upstream.enqueue(Reply(text="a b c d e f g h", break_after=5))
    response = httpx.post(
        both.url + "/v1/messages",
        headers={"x-api-key": key},
        json={
            "model": "gpt-5.5",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "Hi"}],
        },
    )
    assert "event: error" in response.text and "message_stop" not in response.text


@pytest.mark.parametrize(
    ("endpoint", "model", "event"),
    [
        # relayed as is: Anthropic client, Anthropic channel
        ("/v1/messages", "claude-sonnet-4-6", b"event: content_block_delta\ndata: {oops\n\n"),
        ("/v1/messages", "claude-sonnet-4-6", b"event: content_block_delta\ndata: [1]\n\n"),
        (
            "/v1/messages",
            "claude-sonnet-4-6",
            b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": 7}\n\n',
        ),
        # translated, either way
        ("/v1/messages", "gpt-5.5", b"data: [1]\n\n"),
        ("/v1/chat/completions", "claude-sonnet-4-6", b"event: ping\ndata: 7\n\n"),
    ],
)
def test_a_malformed_upstream_event_ends_the_stream_free(
    both: Gateway, upstream: FakeOpenAI, endpoint: str, model: str, event: bytes
) -> None:
    name, key = both.user(credit="1")
    upstream.enqueue(Reply(text=" ".join(["word"] * 200), interval=0.02, inject={4: event}))
    response = httpx.post(
        both.url + endpoint,
        headers={"x-api-key": key, "authorization": f"Bearer {key}"},
        json={"model": model, "max_tokens": 500, "stream": True,
              "messages": [{"role": "user", "content": "Hi"}]},
    )  # fmt: skip
    assert response.status_code == 200
    assert "malformed" in response.text
    assert "message_stop" not in response.text and "[DONE]" not in response.text
    deadline = time.monotonic() + 5
    while not upstream.requests[0].disconnected:
        assert time.monotonic() < deadline, "the gateway kept reading a corrupt stream"
        time.sleep(0.05)
    assert both.balance(name).balance == 10**9  # not charged


def test_translated_answers_carry_ids_in_the_clients_format(
    both: Gateway, upstream: FakeOpenAI
) -> None:
    hi = [{"role": "user", "content": "Hi"}]
    # Anthropic client, OpenAI-format upstream (whose ids are chatcmpl-...).
    unnamed = [{k: v for k, v in CALLS[0].items() if k != "id"}, CALLS[1]]
    upstream.enqueue(Reply(tool_calls=unnamed, finish_reason="tool_calls"))
    message = claude(both).messages.create(model="gpt-5.5", max_tokens=50, messages=hi)
    assert message.id.startswith("msg_") and "chatcmpl" not in message.id
    assert [b.id for b in message.content if b.type == "tool_use"] == [
        f"{message.id}_call_0",
        "toolu_2",
    ]
    with claude(both).messages.stream(model="gpt-5.5", max_tokens=50, messages=hi) as stream:
        assert stream.get_final_message().id.startswith("msg_")
    # OpenAI client, Anthropic upstream (whose ids are msg_...).
    completion = gpt(both).chat.completions.create(model="claude-sonnet-4-6", messages=hi)
    assert completion.id.startswith("chatcmpl-") and "msg_" not in completion.id
    chunks = list(
        gpt(both).chat.completions.create(model="claude-sonnet-4-6", messages=hi, stream=True)
    )
    assert chunks and all(c.id.startswith("chatcmpl-") for c in chunks)


@pytest.mark.parametrize(
    ("endpoint", "model", "answer"),
    [
        ("/v1/messages", "gpt-5.5", {"id": "chatcmpl-1", "choices": 5}),
        ("/v1/messages", "gpt-5.5", {"choices": [{"message": {"tool_calls": [7]}}]}),
        ("/v1/chat/completions", "claude-sonnet-4-6", {"type": "message", "content": [5]}),
        ("/v1/chat/completions", "claude-sonnet-4-6", {"content": [{"type": "text", "text": 5}]}),
    ],
)
def test_a_malformed_answer_to_translate_is_a_free_502(
    both: Gateway, upstream: FakeOpenAI, endpoint: str, model: str, answer: dict[str, Any]
) -> None:
    name, key = both.user(credit="1")
    upstream.enqueue(Fail(200, body=answer))
    response = httpx.post(
        both.url + endpoint,
        headers={"x-api-key": key, "authorization": f"Bearer {key}"},
        json={"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert "invalid answer" in error["message"] and "safe to retry" in error["message"]
    assert both.balance(name).balance == 10**9


def test_channel_default_version_when_the_client_sends_none(
    both: Gateway, upstream: FakeOpenAI
) -> None:
    response = httpx.post(
        both.url + "/v1/messages",
        headers={"x-api-key": both.key()},
        json={
            "model": "claude-sonnet-4-6",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "Hi"}],
        },
    )
    assert response.status_code == 200
    assert upstream.requests[0].headers["anthropic-version"] == "2023-06-01"


def test_count_tokens_native_and_estimated(both: Gateway, upstream: FakeOpenAI) -> None:
    client = claude(both)
    native = client.messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hi"}]
    )
    assert native.input_tokens == 42 and upstream.requests[0].path == "/v1/messages/count_tokens"
    estimated = client.messages.count_tokens(
        model="gpt-5.5", messages=[{"role": "user", "content": "x" * 400}]
    )
    assert estimated.input_tokens == 101  # 404 characters of strings, 4 per token
    assert len(upstream.requests) == 1
