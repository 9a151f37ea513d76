"""The OpenAI Chat Completions wire format: request checks and small builders.

Validation here is about shape only (what the OpenAI API itself would reject); limits that
depend on the model (ranges, output caps) are the chat service's. Unknown fields are left alone:
they pass through to OpenAI-compatible upstreams untouched.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from reapi.protocols.errors import InvalidRequest
from reapi.protocols.limits import MAX_MODEL_NAME

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})


def validate_request(body: dict[str, Any]) -> None:
    """Check the type of every field the gateway or a translator reads; anything else is the
    upstream's to judge. Raises ``InvalidRequest`` naming the field as OpenAI's errors do."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("you must provide a model parameter", "model")
    if len(model) > MAX_MODEL_NAME:
        raise InvalidRequest(
            f"'model' must be at most {MAX_MODEL_NAME} characters long, got {len(model)}.",
            "model",
        )
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", "messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", "messages")
    for index, message in enumerate(messages):
        _check_message(message, f"messages[{index}]")
    for name in ("max_tokens", "max_completion_tokens", "n", "seed"):
        _check_int(body, name)
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidRequest(f"'{name}' must be a number.", name)
    for name, kind in (
        ("stream", bool),
        ("parallel_tool_calls", bool),
        ("group", str),
        ("user", str),
        ("safety_identifier", str),
        ("reasoning_effort", str),
    ):
        _check_type(body.get(name), kind, name)
    options = body.get("stream_options")
    _check_type(options, dict, "stream_options")
    if options:
        _check_type(options.get("include_usage"), bool, "stream_options.include_usage")
    stop = body.get("stop")
    if not (stop is None or isinstance(stop, str) or _strings(stop)):
        raise InvalidRequest("'stop' must be a string or an array of strings.", "stop")
    _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"))
    _check_response_format(body.get("response_format"))


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise InvalidRequest(f"'{where}' must be an object.", where)
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidRequest(
            f"'{where}.role' must be one of system, developer, user, assistant, tool.",
            f"{where}.role",
        )
    _check_type(message.get("name"), str, f"{where}.name")
    if role == "assistant":
        _check_type(message.get("refusal"), str, f"{where}.refusal")
        _check_tool_calls(message.get("tool_calls"), f"{where}.tool_calls")
        _check_type(message.get("function_call"), dict, f"{where}.function_call")
    elif role == "tool":
        _check_type(message.get("tool_call_id"), str, f"{where}.tool_call_id")
    content = message.get("content")
    if content is None:
        # An assistant turn may carry only tool calls (or nothing the spec requires); a legacy
        # function result may be null, but must say so.
        if role == "assistant" or (role == "function" and "content" in message):
            return
        raise InvalidRequest(f"Missing required parameter: '{where}.content'.", f"{where}.content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequest(
            f"'{where}.content' must be a string or an array of content parts.", f"{where}.content"
        )
    for index, part in enumerate(content):
        _check_part(part, f"{where}.content[{index}]")


def _check_part(part: Any, path: str) -> None:
    if not isinstance(part, dict):
        raise InvalidRequest(f"'{path}' must be an object.", path)
    kind = part.get("type")
    if not isinstance(kind, str) or kind not in PART_TYPES:
        raise InvalidRequest(
            f"'{path}.type' must be one of {', '.join(sorted(PART_TYPES))}.", f"{path}.type"
        )
    if kind in ("text", "refusal"):
        if not isinstance(part.get(kind), str):
            raise InvalidRequest(f"'{path}.{kind}' must be a string.", f"{path}.{kind}")
    elif kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:")):
            raise InvalidRequest(
                f"'{path}.image_url.url' must be an http(s) or data: URL.",
                f"{path}.image_url.url",
            )
    else:
        _check_object(part.get(kind), f"{path}.{kind}")


def _check_tool_calls(calls: Any, where: str) -> None:
    if calls is None:
        return
    if not isinstance(calls, list):
        raise InvalidRequest(f"'{where}' must be an array.", where)
    for index, call in enumerate(calls):
        path = f"{where}[{index}]"
        if not isinstance(call, dict):
            raise InvalidRequest(f"'{path}' must be an object.", path)
        _check_type(call.get("id"), str, f"{path}.id")
        kind = call.get("type", "function")
        if kind == "function":
            _check_named(call.get("function"), f"{path}.function", "arguments")
        elif kind == "custom":
            _check_named(call.get("custom"), f"{path}.custom", "input")
        else:
            raise InvalidRequest(f"'{path}.type' must be function or custom.", f"{path}.type")


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array.", "tools")
    for index, tool in enumerate(tools):
        path = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"'{path}' must be an object.", path)
        kind = tool.get("type", "function")
        if kind == "function":
            function = _check_named(tool.get("function"), f"{path}.function", "description")
            _check_type(function.get("parameters"), dict, f"{path}.function.parameters")
            _check_type(function.get("strict"), bool, f"{path}.function.strict")
        elif kind == "custom":
            custom = _check_named(tool.get("custom"), f"{path}.custom", "description")
            _check_type(custom.get("format"), dict, f"{path}.custom.format")
        else:
            raise InvalidRequest(f"'{path}.type' must be function or custom.", f"{path}.type")


def _check_tool_choice(choice: Any) -> None:
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE_MODES:
            raise InvalidRequest(
                "'tool_choice' must be none, auto, required or an object.", "tool_choice"
            )
        return
    if not isinstance(choice, dict):
        raise InvalidRequest("'tool_choice' must be a string or an object.", "tool_choice")
    kind = choice.get("type")
    if kind in ("function", "custom"):
        _check_named(choice.get(kind), f"tool_choice.{kind}")
    elif kind == "allowed_tools":
        _check_object(choice.get(kind), "tool_choice.allowed_tools")
    else:
        raise InvalidRequest(
            "'tool_choice.type' must be function, custom or allowed_tools.", "tool_choice.type"
        )


def _check_response_format(response_format: Any) -> None:
    if response_format is None:
        return
    _check_object(response_format, "response_format")
    if not isinstance(response_format.get("type"), str):
        raise InvalidRequest("'response_format.type' must be a string.", "response_format.type")
    if response_format["type"] == "json_schema":
        schema = response_format.get("json_schema")
        _check_object(schema, "response_format.json_schema")
        _check_type(schema.get("name"), str, "response_format.json_schema.name")
        _check_type(schema.get("schema"), dict, "response_format.json_schema.schema")
        _check_type(schema.get("strict"), bool, "response_format.json_schema.strict")


def _check_named(value: Any, path: str, *strings: str) -> dict[str, Any]:
    """``value`` must be an object with a string ``name``; ``strings`` name optional fields
    that must be strings when present."""
    _check_object(value, path)
    if not isinstance(value.get("name"), str):
        raise InvalidRequest(f"'{path}.name' must be a string.", f"{path}.name")
    for field in strings:
        _check_type(value.get(field), str, f"{path}.{field}")
    return cast(dict[str, Any], value)


def _check_object(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{path}' must be an object.", path)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _check_int(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidRequest(f"'{name}' must be an integer.", name)


_KIND_NAMES = {bool: "a boolean", str: "a string", dict: "an object", list: "an array"}


def _check_type(value: Any, kind: type, param: str) -> None:
    """``value`` is absent (None) or of ``kind``."""
    if value is not None and not isinstance(value, kind):
        raise InvalidRequest(f"'{param}' must be {_KIND_NAMES[kind]}.", param)


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


def count_output_chars(chunk: dict[str, Any]) -> int:
    """Characters of generated output in one stream chunk (text, tool arguments, reasoning)."""
    total = 0
    for choice in _list(chunk.get("choices")):
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        for key in ("content", "reasoning_content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str):
                total += len(text)
        for call in _list(delta.get("tool_calls")):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                for key in ("name", "arguments"):
                    text = function.get(key)
                    total += len(text) if isinstance(text, str) else 0
    return total


def _list(value: object) -> list[Any]:
    # Counting is an estimate over an upstream's answer: a wrong shape counts nothing.
    return value if isinstance(value, list) else []


def count_answer_chars(answer: dict[str, Any]) -> int:
    """Characters of generated output in a whole (non-streamed) answer, for estimating its
    tokens when the upstream did not report them."""
    total = 0
    for choice in _list(answer.get("choices")):
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            total += count_output_chars({"choices": [{"delta": message}]})
    return total
