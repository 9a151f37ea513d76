"""The OpenAI Chat Completions wire format: request checks and small builders.

Validation here is about shape only (what the OpenAI API itself would reject); limits that
depend on the model (ranges, output caps) are the chat service's. Unknown fields are left alone:
they pass through to OpenAI-compatible upstreams untouched.
"""

from __future__ import annotations

from typing import Any

import orjson

from reapi.protocols.errors import InvalidRequest

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def validate_request(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("you must provide a model parameter", "model")
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
    _check_type(body, "stream", bool)
    _check_type(body, "stream_options", dict)
    _check_type(body, "tools", list)
    _check_type(body, "group", str)
    stop = body.get("stop")
    if not (stop is None or isinstance(stop, str) or _strings(stop)):
        raise InvalidRequest("'stop' must be a string or an array of strings.", "stop")
    for index, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            raise InvalidRequest("Each tool needs a 'function' object.", f"tools[{index}]")
        if not isinstance(tool["function"].get("name"), str):
            raise InvalidRequest(
                "Each tool function needs a name.", f"tools[{index}].function.name"
            )
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, str | dict):
        raise InvalidRequest("'tool_choice' must be a string or an object.", "tool_choice")


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise InvalidRequest(f"'{where}' must be an object.", where)
    role = message.get("role")
    if role not in ROLES:
        raise InvalidRequest(
            f"'{where}.role' must be one of system, developer, user, assistant, tool.",
            f"{where}.role",
        )
    content = message.get("content")
    if content is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return
        if role == "assistant" and "content" in message:
            return
        raise InvalidRequest(f"Missing required parameter: '{where}.content'.", f"{where}.content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequest(
            f"'{where}.content' must be a string or an array of content parts.", f"{where}.content"
        )
    for index, part in enumerate(content):
        path = f"{where}.content[{index}]"
        if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
            raise InvalidRequest(
                f"'{path}.type' must be one of {', '.join(sorted(PART_TYPES))}.", f"{path}.type"
            )
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise InvalidRequest(f"'{path}.text' must be a string.", f"{path}.text")
        if part["type"] == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:")):
                raise InvalidRequest(
                    f"'{path}.image_url.url' must be an http(s) or data: URL.",
                    f"{path}.image_url.url",
                )


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _check_int(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidRequest(f"'{name}' must be an integer.", name)


def _check_type(body: dict[str, Any], name: str, kind: type) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise InvalidRequest(f"'{name}' must be of type {kind.__name__}.", name)


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


def count_output_chars(chunk: dict[str, Any]) -> int:
    """Characters of generated output in one stream chunk (text, tool arguments, reasoning)."""
    total = 0
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        for key in ("content", "reasoning_content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str):
                total += len(text)
        for call in delta.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                total += len(function.get("name") or "") + len(function.get("arguments") or "")
    return total


def count_answer_chars(answer: dict[str, Any]) -> int:
    """Characters of generated output in a whole (non-streamed) answer, for estimating its
    tokens when the upstream did not report them."""
    total = 0
    for choice in answer.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            total += count_output_chars({"choices": [{"delta": message}]})
    return total
