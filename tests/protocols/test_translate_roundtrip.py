"""Property tests: a conversation translated OpenAI -> Anthropic -> OpenAI keeps its meaning,
stream translation does not depend on where the upstream's bytes were split, and odd input
(upstream events of any shape, requests validation let through) never raises anything but
``InvalidRequest``."""

from __future__ import annotations

import base64
import contextlib
import itertools
import string
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reapi.protocols.anthropic_messages import validate_request
from reapi.protocols.errors import InvalidRequest
from reapi.protocols.sse import SSEDecoder, SSEEvent
from reapi.protocols.translate import (
    anthropic_request_to_openai,
    anthropic_stream_to_openai,
    openai_request_to_anthropic,
    openai_stream_to_anthropic,
)
from tests.schemas import assert_valid

from .conftest import validate_anthropic_request

IDENT = string.ascii_letters + string.digits + "_-"
texts = st.text(min_size=1, max_size=40)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
arguments = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
http_images = st.builds(
    lambda path: {"type": "image_url", "image_url": {"url": f"https://img.example.com/{path}.png"}},
    st.text(alphabet=IDENT, min_size=1, max_size=12),
)
data_images = st.builds(
    lambda media, raw: {
        "type": "image_url",
        "image_url": {"url": f"data:{media};base64,{base64.b64encode(raw).decode()}"},
    },
    st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"]),
    st.binary(min_size=1, max_size=24),
)
text_parts = st.builds(lambda t: {"type": "text", "text": t}, texts)
user_content = texts | st.lists(text_parts | http_images | data_images, min_size=1, max_size=4)


@st.composite
def tool_exchange(draw: st.DrawFn) -> list[dict[str, Any]]:
    """An assistant turn calling tools, then one tool message per call."""
    count = draw(st.integers(1, 3))
    ids = draw(
        st.lists(
            st.text(alphabet=IDENT, min_size=1, max_size=10),
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    calls = [
        {
            "id": "call_" + call_id,
            "type": "function",
            "function": {
                "name": draw(st.text(alphabet=IDENT, min_size=1, max_size=12)),
                "arguments": orjson.dumps(draw(arguments)).decode(),
            },
        }
        for call_id in ids
    ]
    assistant: dict[str, Any] = {"role": "assistant", "tool_calls": calls}
    assistant["content"] = draw(st.none() | texts)
    results = [
        {"role": "tool", "tool_call_id": c["id"], "content": draw(st.text(max_size=30))}
        for c in calls
    ]
    return [assistant, *results]


turns = st.one_of(
    st.builds(lambda c: [{"role": "user", "content": c}], user_content),
    st.builds(lambda t: [{"role": "assistant", "content": t}], texts),
    tool_exchange(),
)


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    system = draw(st.none() | texts)
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": draw(user_content)})
    for turn in draw(st.lists(turns, max_size=5)):
        messages.extend(turn)
    return {"model": "claude-sonnet-4-6", "max_tokens": 1024, "messages": messages}


def meaning(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a conversation says, independent of how it is cut into messages."""
    items: list[tuple[Any, ...]] = []
    for message in messages:
        role, content = message["role"], message.get("content")
        if role == "tool":
            items.append(("tool_result", message["tool_call_id"], content))
            continue
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for part in parts:
            if part["type"] == "text":
                items.append((role, "text", part["text"]))
            else:
                items.append((role, "image", part["image_url"]["url"]))
        for call in message.get("tool_calls") or []:
            function = call["function"]
            items.append(
                ("tool_call", call["id"], function["name"], orjson.loads(function["arguments"]))
            )
    return items


@settings(max_examples=150, deadline=None)
@given(conversations())
def test_openai_anthropic_openai_keeps_the_conversation(request: dict[str, Any]) -> None:
    anthropic = openai_request_to_anthropic(request)
    validate_anthropic_request(anthropic)
    roles = [m["role"] for m in anthropic["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), "turns must alternate"
    back = anthropic_request_to_openai(anthropic)
    assert_valid("CreateChatCompletionRequest", back)
    assert meaning(back["messages"]) == meaning(request["messages"])


def _frames(events: list[dict[str, Any]], named: bool) -> bytes:
    out = b""
    for event in events:
        prefix = b"event: " + event["type"].encode() + b"\n" if named else b""
        out += prefix + b"data: " + orjson.dumps(event) + b"\n\n"
    return out


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


ANTHROPIC_STREAM = _frames(
    [
        {
            "type": "message_start",
            "message": {
                "id": "m",
                "type": "message",
                "role": "assistant",
                "model": "c",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "é☃🎉\r\n"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a": "☃"}'},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ],
    named=True,
).replace(b"\n", b"\r\n")

OPENAI_STREAM = (
    _frames(
        [
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": "é☃"},
                        "finish_reason": None,
                    }
                ]
            },
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "c",
                                    "type": "function",
                                    "function": {"name": "f", "arguments": '{"a"'},
                                }
                            ]
                        },
                        "finish_reason": None,
                    }
                ]
            },
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]},
                        "finish_reason": "tool_calls",
                    }
                ]
            },
        ],
        named=False,
    )
    + b"data: [DONE]\n\n"
)


def _run(translator: Any, pieces: list[bytes]) -> bytes:
    decoder = SSEDecoder()
    out = b""
    for piece in pieces:
        for event in decoder.feed(piece):
            out += b"".join(translator.feed(event))
    for event in decoder.close():
        out += b"".join(translator.feed(event))
    return out


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_stream_output_does_not_depend_on_byte_splits(data: st.DataObject) -> None:
    def to_openai() -> Any:
        return anthropic_stream_to_openai(
            model="m", include_usage=True, completion_id="c", created=1
        )

    def to_anthropic() -> Any:
        return openai_stream_to_anthropic(model="m", message_id="msg", estimated_input_tokens=1)

    for make, upstream in ((to_openai, ANTHROPIC_STREAM), (to_anthropic, OPENAI_STREAM)):
        whole = _run(make(), [upstream])
        assert whole.endswith((b"data: [DONE]\n\n", b'data: {"type":"message_stop"}\n\n'))
        assert _run(make(), data.draw(splits(upstream))) == whole


json_any = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "index",
                    "delta",
                    "choices",
                    "content",
                    "tool_calls",
                    "function",
                    "arguments",
                    "name",
                    "id",
                    "finish_reason",
                    "usage",
                    "error",
                    "message",
                    "content_block",
                    "text",
                    "partial_json",
                    "stop_reason",
                    "input",
                    "reasoning_content",
                    "prompt_tokens",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)
anthropic_types = st.sampled_from(
    [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(anthropic_types, json_any), max_size=8), st.lists(json_any, max_size=8))
@example([("message_start", {"message": {"usage": "0"}})], [])
@example([], [{"choices": [], "usage": "0"}])
def test_odd_upstream_events_never_raise(
    anthropic_events: list[tuple[str, Any]], openai_chunks: list[Any]
) -> None:

    to_openai = anthropic_stream_to_openai(
        model="m", include_usage=True, completion_id="c", created=1
    )
    for kind, value in anthropic_events:
        data = value | {"type": kind} if isinstance(value, dict) else value
        to_openai.feed(SSEEvent(orjson.dumps(data), kind))
    to_openai.close()
    to_anthropic = openai_stream_to_anthropic(model="m", message_id="x", estimated_input_tokens=1)
    for value in openai_chunks:
        to_anthropic.feed(SSEEvent(orjson.dumps(value)))
    to_anthropic.close()


block_types = st.sampled_from(
    [
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "search_result",
        "hologram",
    ]
)
loose_blocks = st.builds(
    lambda kind, rest: rest | {"type": kind},
    block_types,
    json_any.filter(lambda v: isinstance(v, dict)),
)
loose_messages = st.builds(
    lambda role, content: {"role": role, "content": content},
    st.sampled_from(["user", "assistant", "system", "tool"]),
    st.text(max_size=5) | st.lists(loose_blocks, max_size=3) | json_any,
)


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(loose_messages, min_size=1, max_size=4),
    st.dictionaries(
        st.sampled_from(
            [
                "system",
                "tools",
                "tool_choice",
                "metadata",
                "stop_sequences",
                "thinking",
                "output_config",
                "temperature",
            ]
        ),
        json_any,
        max_size=4,
    ),
)
def test_anything_validate_request_accepts_translates_or_is_a_400(
    messages: list[dict[str, Any]], extra: dict[str, Any]
) -> None:

    body = {"model": "m", "max_tokens": 10, "messages": messages} | extra
    with contextlib.suppress(InvalidRequest):
        anthropic_request_to_openai(validate_request(body))


anthropic_images = st.one_of(
    st.builds(
        lambda path: {
            "type": "image",
            "source": {"type": "url", "url": f"https://x.test/{path}.jpg"},
        },
        st.text(alphabet=IDENT, min_size=1, max_size=8),
    ),
    st.builds(
        lambda media, raw: {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": media,
                "data": base64.b64encode(raw).decode(),
            },
        },
        st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"]),
        st.binary(min_size=1, max_size=16),
    ),
)
anthropic_texts = st.builds(lambda t: {"type": "text", "text": t}, texts)
user_blocks = st.lists(anthropic_texts | anthropic_images, min_size=1, max_size=3)


@st.composite
def anthropic_conversations(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": draw(texts | user_blocks)}]
    for _ in range(draw(st.integers(0, 4))):
        blocks: list[dict[str, Any]] = draw(st.lists(anthropic_texts, max_size=2))
        ids = draw(
            st.lists(st.text(alphabet=IDENT, min_size=1, max_size=8), max_size=2, unique=True)
        )
        blocks += [
            {
                "type": "tool_use",
                "id": "toolu_" + i,
                "name": draw(st.text(alphabet=IDENT, min_size=1, max_size=8)),
                "input": draw(arguments),
            }
            for i in ids
        ]
        if not blocks:
            blocks = [{"type": "text", "text": "ok"}]
        messages.append({"role": "assistant", "content": blocks})
        results = [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_" + i,
                "content": draw(
                    st.text(max_size=10) | st.lists(anthropic_texts, min_size=1, max_size=2)
                ),
            }
            for i in ids
        ]
        rest = draw(user_blocks) if not results or draw(st.booleans()) else []
        messages.append({"role": "user", "content": results + rest})
    body: dict[str, Any] = {"model": "gpt-5.5", "max_tokens": 512, "messages": messages}
    system = draw(st.none() | texts)
    if system is not None:
        body["system"] = system
    return body


def anthropic_meaning(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    items: list[tuple[Any, ...]] = [("system", body["system"])] if body.get("system") else []
    for message in body["messages"]:
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            if block["type"] == "text":
                items.append((message["role"], "text", block["text"]))
            elif block["type"] == "image":
                items.append(
                    (
                        message["role"],
                        "image",
                        orjson.dumps(block["source"], option=orjson.OPT_SORT_KEYS),
                    )
                )
            elif block["type"] == "tool_use":
                items.append(("tool_use", block["id"], block["name"], block["input"]))
            else:
                inner = block["content"]
                parts = [inner] if isinstance(inner, str) else [b["text"] for b in inner]
                items.append(("tool_result", block["tool_use_id"], parts))
    return items


@settings(max_examples=150, deadline=None)
@given(anthropic_conversations())
def test_anthropic_openai_anthropic_keeps_the_conversation(request: dict[str, Any]) -> None:
    validate_request(request)
    openai = anthropic_request_to_openai(request)
    assert_valid("CreateChatCompletionRequest", openai)
    back = openai_request_to_anthropic(openai)
    validate_anthropic_request(back)
    assert anthropic_meaning(back) == anthropic_meaning(request)
