"""Generated chat bodies against a real gateway, toward both kinds of channel: well-formed
requests, the same with junk put in any field (or a field removed), bodies nested far too deep,
and bodies that are not objects at all. Every answer must be a success in the route's format or
a 4xx in its envelope, with an ``x-request-id``: never a 5xx."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Gateway
from tests.fakes.openai_upstream import FakeOpenAI
from tests.http.conftest import CLAUDE_MODEL, OPENAI_MODEL
from tests.http.envelopes import CHAT_PATH, COUNT_PATH, MESSAGES_PATH, assert_answer
from tests.schemas import use_spec

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

text = st.text(max_size=12)
junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    # Awkward strings too: empty, huge-number-looking, a model name past every column.
    | text
    | st.sampled_from(["", "1e999", "m" * 200, "auto", "function", "user", "text"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
models = st.sampled_from([OPENAI_MODEL, CLAUDE_MODEL])
small_schema = st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.just({"city": {"type": "string"}})}
)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


# OpenAI Chat Completions ---------------------------------------------------------------------

arguments = st.sampled_from(['{"city": "Paris"}', "", "{}"])
openai_call = st.one_of(
    st.fixed_dictionaries(
        {
            "id": text,
            "type": st.just("function"),
            "function": st.fixed_dictionaries({"name": text, "arguments": arguments}),
        }
    ),
    st.fixed_dictionaries(
        {
            "id": text,
            "type": st.just("custom"),
            "custom": st.fixed_dictionaries({"name": text, "input": text}),
        }
    ),
)
openai_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": text}),
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": st.fixed_dictionaries(
                {
                    "url": st.sampled_from(
                        ["https://example.com/a.png", "data:image/png;base64,iVBORw0KGgo="]
                    )
                }
            ),
        }
    ),
)
openai_message = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["system", "developer", "user"]),
            "content": text | st.lists(openai_part, min_size=1, max_size=2),
        }
    ),
    st.fixed_dictionaries(
        {"role": st.just("assistant"), "content": st.none() | text},
        optional={"tool_calls": st.lists(openai_call, min_size=1, max_size=2)},
    ),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": text, "content": text}),
)
openai_tool = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {"name": text}, optional={"parameters": small_schema, "description": text}
            ),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("custom"), "custom": st.fixed_dictionaries({"name": text})}
    ),
)
openai_body = st.builds(
    lambda required, extra: {**required, **extra},
    st.fixed_dictionaries(
        {"model": models, "messages": st.lists(openai_message, min_size=1, max_size=3)}
    ),
    optional(
        max_tokens=st.integers(1, 8192),
        max_completion_tokens=st.integers(1, 8192),
        temperature=st.floats(0, 2),
        top_p=st.floats(0, 1),
        stop=text | st.lists(text, max_size=2),
        stream=st.booleans(),
        stream_options=st.fixed_dictionaries({"include_usage": st.booleans()}),
        tools=st.lists(openai_tool, min_size=1, max_size=2),
        tool_choice=st.sampled_from(["auto", "none", "required"])
        | st.fixed_dictionaries(
            {"type": st.just("function"), "function": st.fixed_dictionaries({"name": text})}
        ),
        parallel_tool_calls=st.booleans(),
        reasoning_effort=st.sampled_from(
            ["none", "minimal", "low", "medium", "high", "xhigh", "max"]
        ),
        response_format=st.sampled_from(
            [
                {"type": "text"},
                {"type": "json_object"},
                {"type": "json_schema", "json_schema": {"name": "o", "schema": {}}},
            ]
        ),
        user=text,
        n=st.just(1),
        seed=st.integers(0, 2**31),
        metadata=st.dictionaries(text, text, max_size=2),
    ),
)

# Anthropic Messages --------------------------------------------------------------------------

text_block = st.fixed_dictionaries({"type": st.just("text"), "text": text})
anthropic_block = st.one_of(
    text_block,
    st.fixed_dictionaries(
        {
            "type": st.just("image"),
            "source": st.sampled_from(
                [
                    {"type": "url", "url": "https://example.com/a.png"},
                    {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                ]
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("tool_use"),
            "id": text,
            "name": text,
            "input": st.just({"city": "Paris"}),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("tool_result"), "tool_use_id": text},
        optional={
            "content": text
            | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": text}), max_size=2),
            "is_error": st.booleans(),
        },
    ),
    st.fixed_dictionaries({"type": st.just("thinking"), "thinking": text, "signature": text}),
    st.fixed_dictionaries(
        {
            "type": st.just("document"),
            "source": st.just({"type": "text", "media_type": "text/plain", "data": "notes"}),
        }
    ),
)
anthropic_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant"]),
        "content": text | st.lists(anthropic_block, min_size=1, max_size=2),
    }
)
anthropic_tool = st.fixed_dictionaries(
    {"name": text, "input_schema": small_schema}, optional={"description": text}
)
anthropic_fields = optional(
    system=text | st.lists(text_block, max_size=2),
    temperature=st.floats(0, 1),
    top_p=st.floats(0, 1),
    top_k=st.integers(1, 100),
    stop_sequences=st.lists(text, max_size=2),
    stream=st.booleans(),
    tools=st.lists(anthropic_tool, min_size=1, max_size=2),
    tool_choice=st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}])
    | st.fixed_dictionaries({"type": st.just("tool"), "name": text}),
    metadata=st.fixed_dictionaries({"user_id": text}),
    thinking=st.just({"type": "enabled", "budget_tokens": 1024}),
    output_config=st.just({"effort": "low"}),
)
anthropic_body = st.builds(
    lambda required, extra: {**required, **extra},
    st.fixed_dictionaries(
        {
            "model": models,
            "max_tokens": st.integers(1, 8192),
            "messages": st.lists(anthropic_message, min_size=1, max_size=3),
        }
    ),
    anthropic_fields,
)
count_body = st.builds(
    lambda required, extra: {**required, **extra},
    st.fixed_dictionaries(
        {"model": models, "messages": st.lists(anthropic_message, min_size=1, max_size=3)}
    ),
    anthropic_fields,
)

# Breaking what was generated -----------------------------------------------------------------


def places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (the root excluded)."""
    found: list[tuple[Any, ...]] = []
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        found.append((*path, key))
        found += places(child, (*path, key))
    return found


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for level in range(levels):
        value = [value] if level % 2 else {"nest": value}
    return value


@st.composite
def broken(draw: st.DrawFn, good: st.SearchStrategy[dict[str, Any]]) -> Any:
    """A generated body, and then, most of the time, one to three places in it replaced with
    junk, removed, or nested far too deep; sometimes no body object at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(junk)
    body = copy.deepcopy(draw(good))  # st.just and sampled_from hand out shared objects
    for _ in range(draw(st.integers(0, 3))):
        targets = places(body)
        if not targets:
            break
        path = draw(st.sampled_from(targets))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        how = draw(st.sampled_from(["junk", "junk", "junk", "remove", "deep"]))
        if how == "remove" and isinstance(parent, dict):
            del parent[path[-1]]
        elif how == "deep":
            parent[path[-1]] = deep(draw(st.integers(100, 300)))
        else:
            parent[path[-1]] = draw(junk)
    return body


@pytest.fixture(autouse=True)
def _spec(openai_spec: dict[str, Any]) -> None:
    use_spec(openai_spec)


def send(gateway: Gateway, key: str, path: str, body: Any) -> None:
    response = httpx.post(
        gateway.url + path,
        headers={"Authorization": f"Bearer {key}", "content-type": "application/json"},
        # The standard library's encoder: orjson refuses to write the deepest of these bodies.
        content=json.dumps(body).encode(),
        timeout=30,
    )
    assert_answer(response, path)


def test_chat_completions_answers_every_body_in_its_format(
    mixed: Gateway, upstream: FakeOpenAI
) -> None:
    key = mixed.key(credit="100000")

    @FUZZ
    @given(body=broken(openai_body))
    def run(body: Any) -> None:
        send(mixed, key, CHAT_PATH, body)

    run()


def test_messages_answers_every_body_in_its_format(mixed: Gateway, upstream: FakeOpenAI) -> None:
    key = mixed.key(credit="100000")

    @FUZZ
    @given(body=broken(anthropic_body))
    def run(body: Any) -> None:
        send(mixed, key, MESSAGES_PATH, body)

    run()


def test_count_tokens_answers_every_body_in_its_format(
    mixed: Gateway, upstream: FakeOpenAI
) -> None:
    key = mixed.key(credit="100000")

    @settings(FUZZ, max_examples=60)
    @given(body=broken(count_body))
    def run(body: Any) -> None:
        send(mixed, key, COUNT_PATH, body)

    run()
