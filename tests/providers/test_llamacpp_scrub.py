"""llama-server's answers after the ``llamacpp`` provider's scrub: what OpenAI's schema allows,
and nothing more, on the JSON and the stream paths; ``msg_`` ids on the Anthropic endpoint.

The payloads are what xllamacpp 2026.10.11549 sent (test_llamacpp_wire.py pins the raw facts
against the real server; test_local_model.py checks the gateway end to end)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from reapi.protocols.relay import AnthropicRelay, OpenAIRelay
from reapi.protocols.sse import SSEDecoder, SSEEvent, encode_event
from reapi.providers.llamacpp.provider import LlamaCppProvider
from reapi.providers.openai import OpenAIProvider
from tests.schemas import assert_valid, use_spec

SCRUB_OPENAI = LlamaCppProvider().scrub("openai")
SCRUB_ANTHROPIC = LlamaCppProvider().scrub("anthropic")
TIMINGS = {"cache_n": 7, "prompt_n": 5, "prompt_ms": 30.9, "predicted_n": 3, "predicted_ms": 27.1}
BASE = {
    "created": 1796208282,
    "id": "chatcmpl-87DBIKewZfkbA0xr4zLhwlex5jkBOemv",
    "model": "gemma-3-270m",
    "system_fingerprint": "b0-unknown",
}
USAGE = {
    "completion_tokens": 3,
    "prompt_tokens": 12,
    "total_tokens": 15,
    "prompt_tokens_details": {"cached_tokens": 7},
}
ENTRY = {"id": 37889, "token": "Say", "bytes": [83, 97, 121], "logprob": -0.76}
ANSWER = {
    **BASE,
    "choices": [
        {
            "finish_reason": "length",
            "index": 0,
            "message": {"role": "assistant", "content": "Say hello."},
            "logprobs": {"content": [{**ENTRY, "top_logprobs": [ENTRY]}]},
        }
    ],
    "object": "chat.completion",
    "usage": USAGE,
    "timings": TIMINGS,
}


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"finish_reason": finish, "index": 0, "delta": delta}
    return {**BASE, "choices": [choice], "object": "chat.completion.chunk", **extra}


STREAM = [
    chunk({"role": "assistant", "content": None}),
    chunk({"content": "Say"}, logprobs={"content": [{**ENTRY, "top_logprobs": [ENTRY]}]}),
    chunk({}, "length", timings=TIMINGS),
    {**chunk({}), "choices": [], "usage": USAGE, "timings": TIMINGS},
]


@pytest.fixture(autouse=True)
def _spec(openai_spec: dict[str, Any]) -> None:
    use_spec(openai_spec)


def test_a_json_answer_keeps_only_what_the_spec_allows() -> None:
    with pytest.raises(AssertionError):
        assert_valid("CreateChatCompletionResponse", ANSWER, strict=True)  # what the server sent
    answer = copy.deepcopy(ANSWER)
    assert SCRUB_OPENAI is not None and SCRUB_OPENAI(answer)
    assert_valid("CreateChatCompletionResponse", answer, strict=True)
    assert "timings" not in answer and "system_fingerprint" not in answer
    # What the client came for is untouched, and a second pass finds nothing to do.
    parsed = ChatCompletion.model_validate(answer)
    assert parsed.choices[0].message.content == "Say hello."
    assert parsed.choices[0].logprobs is not None
    assert [t.token for t in parsed.choices[0].logprobs.content or []] == ["Say"]
    assert parsed.usage is not None and parsed.usage.prompt_tokens == 12
    assert not SCRUB_OPENAI(answer)


def relay(relay: OpenAIRelay | AnthropicRelay, events: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out = [piece for raw in events for e in decoder.feed(raw) for piece in relay.feed(e)]
    return [e for piece in out for e in decoder.feed(piece)]


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_chunks_keep_only_what_the_spec_allows(include_usage: bool) -> None:
    relayed = OpenAIRelay(model="gemma-3-270m", include_usage=include_usage, scrub=SCRUB_OPENAI)
    raw = [encode_event(orjson.dumps(c)) for c in STREAM] + [b"data: [DONE]\n\n"]
    out = relay(relayed, raw)
    assert out[-1].data == b"[DONE]" and relayed.finished
    chunks = [orjson.loads(e.data) for e in out[:-1]]
    assert len(chunks) == (4 if include_usage else 3)
    for body in chunks:
        assert_valid("CreateChatCompletionStreamResponse", body, strict=True)
        ChatCompletionChunk.model_validate(body)
    assert relayed.usage is not None and relayed.usage.completion_tokens == 3  # still billed


def test_other_upstreams_chunks_pass_byte_for_byte() -> None:
    assert OpenAIProvider().scrub("openai") is None
    relayed = OpenAIRelay(model="gemma-3-270m", include_usage=True, scrub=None)
    event = encode_event(orjson.dumps({**STREAM[1], "x_vendor": 1}))
    assert relay(relayed, [event]) == SSEDecoder().feed(event)


def test_anthropic_answers_get_msg_ids() -> None:
    answer = {
        "id": "chatcmpl-5VUBew5yI45FkWKUU0Jtg6aaxQ6Qrwty",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Say hello."}],
        "model": "gemma-3-270m",
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {"cache_read_input_tokens": 7, "input_tokens": 5, "output_tokens": 3},
    }
    assert SCRUB_ANTHROPIC is not None and SCRUB_ANTHROPIC(answer)
    assert answer["id"].startswith("msg_") and len(answer["id"]) == 28
    assert not SCRUB_ANTHROPIC(answer)
    start = {"type": "message_start", "message": {**answer, "id": "chatcmpl-b", "content": []}}
    events = [
        start,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "S"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
         "usage": {"output_tokens": 1}},
        {"type": "message_stop"},
    ]  # fmt: skip
    relayed = AnthropicRelay(model="gemma-3-270m", scrub=SCRUB_ANTHROPIC)
    out = relay(relayed, [encode_event(orjson.dumps(e), e["type"]) for e in events])
    first = orjson.loads(out[0].data)
    assert first["message"]["id"].startswith("msg_")
    # Only message_start carried the id: the other events go out as the server sent them.
    assert [e.data for e in out[1:]] == [orjson.dumps(e) for e in events[1:]]
    assert relayed.finished
