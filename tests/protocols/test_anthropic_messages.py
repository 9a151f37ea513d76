from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.types.shared import ErrorResponse

from reapi.protocols.anthropic_messages import error_body, error_event, validate_request
from reapi.protocols.errors import InvalidRequest
from reapi.protocols.sse import SSEDecoder


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    return base | overrides


def rejects(value: Any, param: str | None) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        validate_request(value)
    assert info.value.param == param
    return info.value


def test_a_minimal_request_passes_unchanged() -> None:
    request = body()
    assert validate_request(request) is request


def test_unknown_top_level_fields_pass() -> None:
    request = body(
        context_management={"edits": []},
        output_config={"effort": "high"},
        some_future_field=[1, 2],
    )
    assert validate_request(request) is request


def test_claude_code_style_request_passes() -> None:
    request = body(
        system=[
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}
        ],
        messages=[
            {"role": "system", "content": "Inline reminder."},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "x"}],
                    }
                ],
            },
        ],
        tools=[{"name": "Read", "input_schema": {"type": "object"}}],
        stream=True,
        temperature=1,
        top_p=0.9,
        top_k=5,
        stop_sequences=["END"],
    )
    assert validate_request(request) is request


@pytest.mark.parametrize("value", [None, [], "text", 3])
def test_a_body_that_is_not_an_object_is_refused(value: Any) -> None:
    rejects(value, None)


@pytest.mark.parametrize("model", [None, "", 5])
def test_model_must_be_a_non_empty_string(model: Any) -> None:
    request = body()
    if model is None:
        del request["model"]
    else:
        request["model"] = model
    rejects(request, "model")


@pytest.mark.parametrize("max_tokens", [None, 0, -1, 1.5, "10", True])
def test_max_tokens_must_be_a_positive_integer(max_tokens: Any) -> None:
    request = body(max_tokens=max_tokens)
    if max_tokens is None:
        del request["max_tokens"]
    rejects(request, "max_tokens")


@pytest.mark.parametrize("messages", [None, [], "hi", {"role": "user"}])
def test_messages_must_be_a_non_empty_list(messages: Any) -> None:
    rejects(body(messages=messages), "messages")


def test_roles_are_user_assistant_or_system() -> None:
    rejects(body(messages=[{"role": "tool", "content": "x"}]), "messages.0.role")


def test_content_must_be_a_string_or_blocks() -> None:
    rejects(body(messages=[{"role": "user", "content": 5}]), "messages.0.content")
    rejects(body(messages=[{"role": "user", "content": ["x"]}]), "messages.0.content.0")


def test_types_and_roles_of_the_wrong_json_type_are_a_400() -> None:
    rejects(body(messages=[{"role": ["user"], "content": "x"}]), "messages.0.role")
    rejects(
        body(messages=[{"role": "user", "content": [{"type": []}]}]), "messages.0.content.0.type"
    )


def test_an_unknown_block_type_is_a_clear_400() -> None:
    error = rejects(
        body(messages=[{"role": "user", "content": [{"type": "hologram"}]}]),
        "messages.0.content.0.type",
    )
    assert "hologram" in error.message


def test_blocks_inside_tool_results_are_checked_too() -> None:
    content = [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "nope"}]}]
    rejects(
        body(messages=[{"role": "user", "content": content}]), "messages.0.content.0.content.0.type"
    )


@pytest.mark.parametrize(
    ("block", "param"),
    [
        ({"type": "text"}, "messages.0.content.0.text"),
        ({"type": "image"}, "messages.0.content.0.source"),
        ({"type": "tool_use", "id": "a", "name": "b", "input": "{}"}, "messages.0.content.0.input"),
        ({"type": "tool_result"}, "messages.0.content.0.tool_use_id"),
    ],
)
def test_block_shapes_are_checked(block: dict[str, Any], param: str) -> None:
    rejects(body(messages=[{"role": "user", "content": [block]}]), param)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", "hot"),
        ("top_p", True),
        ("top_k", 1.5),
        ("stop_sequences", "END"),
        ("stream", "yes"),
    ],
)
def test_sampling_fields_have_their_types(field: str, value: Any) -> None:
    rejects(body(**{field: value}), field)


def test_tool_choice_must_be_an_object_with_a_type() -> None:
    rejects(body(tool_choice="auto"), "tool_choice")
    assert validate_request(body(tool_choice={"type": "auto"}))


def test_system_must_be_text() -> None:
    rejects(body(system=5), "system")
    rejects(body(system=[{"type": "image"}]), "system.0")


def test_error_body_parses_as_an_anthropic_error() -> None:
    parsed = ErrorResponse.model_validate(orjson.loads(error_body("invalid_request_error", "bad")))
    assert parsed.error.type == "invalid_request_error"
    assert parsed.error.message == "bad"


def test_error_event_is_an_sse_error_event() -> None:
    [event] = SSEDecoder().feed(error_event("overloaded_error", "busy"))
    assert event.event == "error"
    assert orjson.loads(event.data) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }


def test_error_event_turns_foreign_error_types_into_api_error() -> None:
    [event] = SSEDecoder().feed(error_event("server_error", "boom"))
    assert orjson.loads(event.data)["error"]["type"] == "api_error"
