"""Property tests for the Responses API converters: an answer rendered as output items and
replayed as input (what a stateless client such as Codex does) is the same conversation to the
upstream, signed thinking included; a streamed answer ends as the same response object as the
whole one, wherever the upstream's bytes were split; and odd requests never raise anything but
``InvalidRequest``."""

from __future__ import annotations

import contextlib
import itertools
import string
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from reapi.protocols import responses
from reapi.protocols.errors import InvalidRequest
from reapi.protocols.sse import SSEDecoder
from reapi.protocols.translate import (
    response_to_responses,
    responses_request_to,
    stream_to_responses,
)
from tests.schemas import assert_valid, assert_valid_event

from .conftest import decode_bytewise, validate_anthropic_request

IDENT = string.ascii_letters + string.digits + "_-"
names = st.text(alphabet=IDENT, min_size=1, max_size=12)
texts = st.text(min_size=1, max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
CUSTOM = "edit"  # the one custom tool of these requests
TOOLS = [
    {"type": "function", "name": "fn", "parameters": {"type": "object"}},
    {"type": "custom", "name": CUSTOM},
    {"type": "web_search"},
]


@st.composite
def answers(draw: st.DrawFn) -> list[dict[str, Any]]:
    """The content blocks of an Anthropic answer: optional signed thinking, then text and tool
    calls (function or custom) in any order."""
    blocks: list[dict[str, Any]] = []
    if draw(st.booleans()):
        blocks.append({"type": "thinking", "thinking": draw(texts), "signature": draw(names)})
    ids = iter(draw(st.lists(names, min_size=4, max_size=4, unique=True)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["text", "function", "custom"]))
        if kind == "text":
            blocks.append({"type": "text", "text": draw(texts)})
        elif kind == "function":
            arguments = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
            blocks.append({"type": "tool_use", "id": next(ids), "name": "fn", "input": arguments})
        else:
            text = draw(st.text(max_size=30))
            blocks.append(
                {"type": "tool_use", "id": next(ids), "name": CUSTOM, "input": {"input": text}}
            )
    return blocks


def anthropic_answer(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    calls = any(b["type"] == "tool_use" for b in blocks)
    return {
        "id": "msg_x",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": blocks,
        "stop_reason": "tool_use" if calls else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 7},
    }


def merged(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent text blocks read as one (a message item holds a run of text)."""
    out: list[dict[str, Any]] = []
    for block in blocks:
        if block["type"] == "text" and out and out[-1]["type"] == "text":
            out[-1] = {"type": "text", "text": out[-1]["text"] + block["text"]}
        else:
            out.append(dict(block))
    return out


REQUEST = {"model": "claude", "max_output_tokens": 20_000, "tools": TOOLS}
ECHO = responses.Echo.of(REQUEST, model="claude")


@settings(max_examples=150, deadline=None)
@given(answers())
def test_output_items_replayed_as_input_are_the_same_turn(blocks: list[dict[str, Any]]) -> None:
    out = response_to_responses(
        "anthropic", anthropic_answer(blocks), ECHO, response_id="resp_p", created_at=1
    )
    assert_valid("Response", out)
    history: list[Any] = [{"role": "user", "content": "go"}, *out["output"]]
    history += [
        {"type": f"{item['type']}_output", "call_id": item["call_id"], "output": "ok"}
        for item in out["output"]
        if item["type"] in ("function_call", "custom_tool_call")
    ]
    body = {**REQUEST, "input": history, "reasoning": {"effort": "low"}}
    responses.validate_request(body)
    sent = responses_request_to("anthropic", body)
    validate_anthropic_request(sent)
    assistant = sent["messages"][1]["content"]
    if isinstance(assistant, str):
        assistant = [{"type": "text", "text": assistant}]
    assert assistant == merged(blocks)
    roles = [m["role"] for m in sent["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), "turns must alternate"
    # A signed block lets thinking continue after the tool calls.
    signed = blocks[0]["type"] == "thinking"
    assert ("thinking" in sent) == (signed or not any(b["type"] == "tool_use" for b in blocks))
    chat = responses_request_to("openai", body)
    assert_valid("CreateChatCompletionRequest", chat)


def anthropic_stream(blocks: list[dict[str, Any]]) -> bytes:
    answer = anthropic_answer(blocks)
    start = {**answer, "content": [], "stop_reason": None}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(blocks):
        if block["type"] == "thinking":
            first = {"type": "thinking", "thinking": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ]
        elif block["type"] == "text":
            first = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": block["text"]}]
        else:
            first = {**block, "input": {}}
            json = orjson.dumps(block["input"]).decode()
            deltas = [
                {"type": "input_json_delta", "partial_json": json[i : i + 5]}
                for i in range(0, len(json), 5)
            ]
        events.append({"type": "content_block_start", "index": index, "content_block": first})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": answer["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": 7},
        }
    )
    events.append({"type": "message_stop"})
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events
    )


@settings(max_examples=100, deadline=None)
@given(answers(), st.data())
def test_a_streamed_answer_ends_as_the_whole_answer_wherever_it_was_split(
    blocks: list[dict[str, Any]], data: st.DataObject
) -> None:
    raw = anthropic_stream(blocks)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=20)))
    translator = stream_to_responses("anthropic", ECHO, response_id="resp_p", created_at=1)
    decoder = SSEDecoder()
    out: list[bytes] = []
    for a, b in itertools.pairwise([0, *cuts, len(raw)]):
        for event in decoder.feed(raw[a:b]):
            out += translator.feed(event)
    assert translator.finished
    events = [orjson.loads(e.data) for e in decode_bytewise(out)]
    for event in events:
        assert_valid_event(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    whole = response_to_responses(
        "anthropic", anthropic_answer(blocks), ECHO, response_id="resp_p", created_at=1
    )
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"] == whole
    added = [e["item"]["id"] for e in events if e["type"] == "response.output_item.added"]
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert added == [item["id"] for item in whole["output"]]
    assert done == whole["output"]


json_any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
item_types = st.sampled_from(
    [
        "message",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "reasoning",
        "item_reference",
        None,
    ]
)
items = st.builds(
    lambda kind, fields: fields | ({"type": kind} if kind else {}),
    item_types,
    st.dictionaries(
        st.sampled_from(
            [
                "role",
                "content",
                "call_id",
                "name",
                "arguments",
                "output",
                "input",
                "summary",
                "encrypted_content",
                "namespace",
            ]
        ),
        json_any | st.sampled_from(["user", "assistant", "developer", "x"]),
        max_size=5,
    ),
)


tools = st.lists(
    st.builds(
        lambda kind, fields: fields | {"type": kind},
        st.sampled_from(["function", "custom", "namespace", "web_search", "allowed_tools"]),
        st.dictionaries(
            st.sampled_from(["name", "description", "parameters", "format", "tools", "mode"]),
            json_any | st.sampled_from(["fn", "ns", "auto", "required"]),
            max_size=4,
        ),
    ),
    max_size=3,
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(items, min_size=1, max_size=4) | json_any,
    st.dictionaries(
        st.sampled_from(
            [
                "instructions",
                "tools",
                "tool_choice",
                "text",
                "reasoning",
                "temperature",
                "metadata",
                "parallel_tool_calls",
                "stream",
                "include",
                "truncation",
            ]
        ),
        json_any,
        max_size=4,
    ),
    tools,
)
def test_odd_requests_are_translated_or_a_400(
    source: Any, fields: dict[str, Any], draw_tools: list[Any]
) -> None:
    body = {"model": "m", "input": source, **fields, "max_output_tokens": 100}
    if "tools" not in fields:
        body["tools"] = draw_tools
    if isinstance(fields.get("tool_choice"), list):
        body["tool_choice"] = fields["tool_choice"][0] if fields["tool_choice"] else None
    with contextlib.suppress(InvalidRequest):
        responses.validate_request(body)
        responses.Echo.of(body, model="m")
        for fmt in ("anthropic", "openai"):
            with contextlib.suppress(InvalidRequest):
                responses_request_to(fmt, body)  # type: ignore[arg-type]
