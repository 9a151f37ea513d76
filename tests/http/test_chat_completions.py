"""POST /v1/chat/completions through the official openai SDK and plain HTTP, against the fake
OpenAI upstream. Every body, chunk and error is checked against the official OpenAPI schemas."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.clients import openai_client
from tests.conftest import Gateway
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.schemas import assert_valid, use_spec

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(autouse=True)
def _spec(openai_spec: dict[str, Any]) -> None:
    use_spec(openai_spec)


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai_client(api_key=gateway.key(), base_url=gateway.url + "/v1", max_retries=0)


def sse_events(body: bytes) -> list[bytes]:
    return [line[6:] for line in body.split(b"\n") if line.startswith(b"data: ")]


def test_non_streaming_answer_matches_the_spec_and_echoes_the_model(
    gateway: Gateway, upstream: FakeOpenAI
) -> None:
    key = gateway.key()
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "mapped-model", "messages": HELLO},
    )
    assert response.status_code == 200
    body = response.json()
    assert_valid("CreateChatCompletionResponse", body)
    assert body["model"] == "mapped-model"
    assert body["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 9,
        "total_tokens": 21,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert response.headers["x-request-id"].startswith("req_")
    [sent] = upstream.requests
    assert sent.body["model"] == "upstream-name-7"
    assert sent.headers["Authorization"] == "Bearer sk-upstream-secret"
    assert key not in repr(sent.headers)


def test_sdk_streaming_is_relayed_chunk_by_chunk(
    client: openai.OpenAI, upstream: FakeOpenAI
) -> None:
    upstream.enqueue(Reply(text="one two three four", split_bytes=5))
    chunks = list(client.chat.completions.create(model="gpt-5.5", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "one two three four"
    )
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.model == "gpt-5.5" for c in chunks)
    # The gateway always asks for usage (billing needs it) but the client did not: no usage chunk.
    assert all(c.usage is None for c in chunks)
    [sent] = upstream.requests
    assert sent.body["stream_options"] == {"include_usage": True}


def test_stream_usage_chunk_is_relayed_when_asked(gateway: Gateway, upstream: FakeOpenAI) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key()}"},
        json={
            "model": "mapped-model",
            "messages": HELLO,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.content)
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
        assert chunk["model"] == "mapped-model"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 21


def test_usage_riding_on_the_last_choice_chunk_is_stripped_when_not_asked(
    gateway: Gateway, upstream: FakeOpenAI
) -> None:
    upstream.enqueue(Reply(usage_in_last_choice_chunk=True))
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key()}"},
        json={"model": "gpt-5.5", "messages": HELLO, "stream": True},
    )
    chunks = [orjson.loads(e) for e in sse_events(response.content)[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(not c.get("usage") for c in chunks)


def test_group_is_not_forwarded_and_unknown_fields_pass_through(
    client: openai.OpenAI, upstream: FakeOpenAI
) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    client.chat.completions.create(
        model="gpt-5.5",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]},
        ],
        stop=["\n\n"],
        temperature=0.3,
        top_p=0.9,
        extra_body={"group": "default", "vendor_knob": {"depth": 3}, "logit_bias": {"50256": -100}},
    )
    [sent] = upstream.requests
    assert "group" not in sent.body
    assert sent.body["vendor_knob"] == {"depth": 3}
    assert sent.body["logit_bias"] == {"50256": -100}
    assert sent.body["messages"][1]["content"][1] == image
    # The model's default_max_tokens, under the name OpenAI's reasoning models accept.
    assert sent.body["max_completion_tokens"] == 4096 and "max_tokens" not in sent.body
    assert sent.body["stop"] == ["\n\n"]


def test_tool_calls_stream_through(client: openai.OpenAI, upstream: FakeOpenAI) -> None:
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'},
        },
        {
            "id": "call_b",
            "type": "function",
            "function": {"name": "get_time", "arguments": '{"tz": "Asia/Tokyo"}'},
        },
    ]
    upstream.enqueue(Reply(tool_calls=calls, finish_reason="tool_calls"))
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
    ]
    arguments: dict[int, str] = {}
    finish = None
    for chunk in client.chat.completions.create(
        model="gpt-5.5", messages=HELLO, tools=tools, tool_choice="auto", stream=True
    ):
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                arguments[call.index] = arguments.get(call.index, "") + (
                    call.function.arguments or ""
                )
    assert finish == "tool_calls"
    assert {i: orjson.loads(a) for i, a in arguments.items()} == {
        0: {"city": "Tokyo"},
        1: {"tz": "Asia/Tokyo"},
    }
    assert upstream.requests[0].body["tool_choice"] == "auto"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-5.5"}, "messages"),
        ({"model": "gpt-5.5", "messages": "hi"}, "messages"),
        ({"model": "gpt-5.5", "messages": []}, "messages"),
        ({"messages": HELLO}, "model"),
        (
            {"model": "gpt-5.5", "messages": [{"role": "wizard", "content": "x"}]},
            "messages[0].role",
        ),
        (
            {"model": "gpt-5.5", "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0].type",
        ),
        ({"model": "gpt-5.5", "messages": HELLO, "max_tokens": "many"}, "max_tokens"),
        ({"model": "gpt-5.5", "messages": HELLO, "max_tokens": 0}, "max_tokens"),
        ({"model": "gpt-5.5", "messages": HELLO, "max_tokens": 128001}, "max_tokens"),
        (
            {"model": "gpt-5.5", "messages": HELLO, "max_completion_tokens": 200000},
            "max_completion_tokens",
        ),
        ({"model": "gpt-5.5", "messages": HELLO, "stream": "yes"}, "stream"),
        ({"model": "gpt-5.5", "messages": HELLO, "temperature": 2.5}, "temperature"),
        ({"model": "gpt-5.5", "messages": HELLO, "top_p": 1.5}, "top_p"),
        ({"model": "claude-sonnet-4-6", "messages": HELLO, "temperature": 1.2}, "temperature"),
        ({"model": "gpt-5.5", "messages": HELLO, "group": 7}, "group"),
        ({"model": "gpt-5.5", "messages": HELLO, "stop": [1, 2]}, "stop"),
    ],
)
def test_bad_requests_are_400_and_never_reach_the_upstream(
    gateway: Gateway, upstream: FakeOpenAI, body: dict[str, Any], param: str
) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key()}"},
        json=body,
    )
    assert response.status_code == 400, response.text
    error = response.json()
    assert_valid("ErrorResponse", error)
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["param"] == param
    assert upstream.requests == []


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b'"text"'])
def test_unparseable_bodies_are_400(gateway: Gateway, upstream: FakeOpenAI, raw: bytes) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key()}", "content-type": "application/json"},
        content=raw,
    )
    assert response.status_code == 400
    assert_valid("ErrorResponse", response.json())
    assert upstream.requests == []


def test_claude_temperature_within_range_is_accepted(
    client: openai.OpenAI, upstream: FakeOpenAI
) -> None:
    client.chat.completions.create(
        model="claude-sonnet-4-6", messages=HELLO, temperature=1.0, max_tokens=128000
    )
    assert upstream.requests[0].body["max_tokens"] == 128000


def test_unknown_model_is_404(client: openai.OpenAI, upstream: FakeOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-0", messages=HELLO)
    assert raised.value.code == "model_not_found"
    assert upstream.requests == []


def test_group_the_user_may_not_use_is_403(gateway: Gateway, upstream: FakeOpenAI) -> None:
    client = openai_client(api_key=gateway.key(), base_url=gateway.url + "/v1", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="gpt-5.5", messages=HELLO, extra_body={"group": "vip"})
    vip = openai_client(
        api_key=gateway.key(groups=("default", "vip")), base_url=gateway.url + "/v1"
    )
    vip.chat.completions.create(model="gpt-5.5", messages=HELLO, extra_body={"group": "vip"})
    assert len(upstream.requests) == 1


def test_key_default_group_selects_routing(gateway: Gateway, upstream: FakeOpenAI) -> None:
    key = gateway.key(groups=("lonely",), group="lonely")
    client = openai_client(api_key=key, base_url=gateway.url + "/v1", max_retries=0)
    # No channel serves the "lonely" group, so no model exists for this key.
    assert client.models.list().data == []
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-5.5", messages=HELLO)
    assert upstream.requests == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk-not-a-real-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"x-api-key": "sk-wrong"},
    ],
)
def test_missing_or_invalid_keys_are_401(
    gateway: Gateway, upstream: FakeOpenAI, headers: dict[str, str]
) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers=headers,
        json={"model": "gpt-5.5", "messages": HELLO},
    )
    assert response.status_code == 401
    assert_valid("ErrorResponse", response.json())
    assert upstream.requests == []


def test_x_api_key_header_is_accepted(gateway: Gateway, upstream: FakeOpenAI) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"x-api-key": gateway.key()},
        json={"model": "gpt-5.5", "messages": HELLO},
    )
    assert response.status_code == 200


def test_a_revoked_key_stops_working(gateway: Gateway, upstream: FakeOpenAI) -> None:
    import asyncio

    from reapi.services.keys import KeyService, hash_secret
    from reapi.storage.db import Database

    key = gateway.key()
    client = openai_client(api_key=key, base_url=gateway.url + "/v1", max_retries=0)
    client.chat.completions.create(model="gpt-5.5", messages=HELLO)

    async def revoke() -> None:
        db = Database(gateway.settings.database_url)
        try:
            from sqlalchemy import select

            from reapi.storage.tables import ApiKey

            async with db.session() as session:
                key_id = (
                    await session.execute(
                        select(ApiKey.id).where(ApiKey.secret_hash == hash_secret(key))
                    )
                ).scalar_one()
            await KeyService(db).revoke_key(key_id)
        finally:
            await db.dispose()

    asyncio.run(revoke())
    deadline = time.monotonic() + 5
    while True:
        try:
            client.chat.completions.create(model="gpt-5.5", messages=HELLO)
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "the revoked key kept working"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("status", "seen", "code"),
    [
        (400, 400, None),
        (404, 404, None),
        (422, 422, None),
        (500, 502, "upstream_error"),
        (503, 502, "upstream_error"),
        (401, 502, "upstream_auth_failed"),
        (429, 429, "upstream_rate_limited"),
    ],
)
def test_upstream_errors_are_mapped(
    gateway: Gateway, upstream: FakeOpenAI, status: int, seen: int, code: str | None
) -> None:
    from tests.fakes.openai_upstream import Fail

    upstream.enqueue(Fail(status, headers={"retry-after": "7"} if status == 429 else {}))
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key()}"},
        json={"model": "gpt-5.5", "messages": HELLO},
    )
    assert response.status_code == seen
    error = response.json()
    assert_valid("ErrorResponse", error)
    if code:
        assert error["error"]["code"] == code
    if seen >= 500 and status != 401:
        assert "safe to retry" in error["error"]["message"]
    if status == 401:  # the operator's channel key is wrong: retrying would not help
        assert "operator must fix" in error["error"]["message"]
    if status == 400:
        assert "fake failure 400" in error["error"]["message"]
    if status == 429:
        assert response.headers["retry-after"] == "7"
    assert len(upstream.requests) == 1  # never retried


def test_stream_request_failing_upstream_is_an_http_error(
    gateway: Gateway, upstream: FakeOpenAI
) -> None:
    from tests.fakes.openai_upstream import Fail

    upstream.enqueue(Fail(500))
    client = openai_client(api_key=gateway.key(), base_url=gateway.url + "/v1", max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        list(client.chat.completions.create(model="gpt-5.5", messages=HELLO, stream=True))
    assert raised.value.status_code == 502
    assert len(upstream.requests) == 1


def test_upstream_timeout_is_504_and_not_retried(gateway: Gateway, upstream: FakeOpenAI) -> None:
    upstream.enqueue(Reply(delay=4.0))  # the test channel's first_byte limit is 3 s
    client = openai_client(api_key=gateway.key(), base_url=gateway.url + "/v1", max_retries=0)
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="gpt-5.5", messages=HELLO)
    assert raised.value.status_code == 504
    assert raised.value.code == "upstream_timeout"
    assert len(upstream.requests) == 1


def test_upstream_breaking_off_mid_stream_is_an_error_not_an_end(
    gateway: Gateway, upstream: FakeOpenAI
) -> None:
    upstream.enqueue(Reply(text="a b c d e f", break_after=3))
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key()}"},
        json={"model": "gpt-5.5", "messages": HELLO, "stream": True},
    )
    events = sse_events(response.content)
    assert b"[DONE]" not in events
    error = orjson.loads(events[-1])
    assert_valid("ErrorResponse", error)
    assert "safe to retry" in error["error"]["message"]
    client = openai_client(api_key=gateway.key(), base_url=gateway.url + "/v1", max_retries=0)
    upstream.enqueue(Reply(text="a b c d e f", break_after=3))
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="gpt-5.5", messages=HELLO, stream=True))


def test_client_leaving_mid_stream_cancels_the_upstream(
    gateway: Gateway, upstream: FakeOpenAI
) -> None:
    upstream.enqueue(Reply(text=" ".join(["word"] * 200), interval=0.05))
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key()}"},
        json={"model": "gpt-5.5", "messages": HELLO, "stream": True},
    ) as response:
        lines = response.iter_lines()
        for _ in range(3):
            next(lines)
    deadline = time.monotonic() + 5
    while not upstream.requests[0].disconnected:
        assert time.monotonic() < deadline, "the upstream kept streaming to nobody"
        time.sleep(0.05)
    assert upstream.requests[0].chunks_sent < 100


def test_models_lists_what_the_key_may_use(client: openai.OpenAI, gateway: Gateway) -> None:
    response = httpx.get(
        gateway.url + "/v1/models", headers={"Authorization": f"Bearer {client.api_key}"}
    )
    assert response.status_code == 200
    assert_valid("ListModelsResponse", response.json())
    assert sorted(m.id for m in client.models.list()) == [
        "claude-sonnet-4-6",
        "gpt-5.4",
        "gpt-5.5",
        "mapped-model",
    ]
    assert httpx.get(gateway.url + "/v1/models").status_code == 401


def test_health_metrics_and_unknown_routes(gateway: Gateway, client: openai.OpenAI) -> None:
    assert httpx.get(gateway.url + "/healthz").status_code == 200
    client.chat.completions.create(model="gpt-5.5", messages=HELLO)
    metrics = httpx.get(gateway.url + "/metrics").text
    assert (
        'reapi_requests_total{endpoint="chat.completions",model="gpt-5.5",outcome="ok",status="200"}'
        in metrics
    )
    missing = httpx.get(gateway.url + "/v1/nothing-here")
    assert missing.status_code == 404
    assert_valid("ErrorResponse", missing.json())


def test_oversized_body_is_rejected(gateway: Gateway, upstream: FakeOpenAI) -> None:
    from reapi.settings import Settings

    assert Settings().max_request_bytes == 32 * 1024 * 1024
    big = "x" * (33 * 1024 * 1024)
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key()}"},
        json={"model": "gpt-5.5", "messages": [{"role": "user", "content": big}]},
    )
    assert response.status_code == 413
    assert upstream.requests == []
