"""The Anthropic Messages wire format: request shape checks and error bodies.

It checks only what every route needs before a request goes anywhere (the shape the Messages
API itself would refuse with a 400), so a malformed request fails here with a clear ``param``
rather than deep inside a translator or at the upstream. Unknown top-level fields pass: Claude
Code and newer SDKs send fields (``context_management``, ``output_config``...) this gateway has
never heard of, and the native relay must forward them untouched.

Reference: https://docs.anthropic.com/en/api/messages (API version 2023-06-01).
"""

from __future__ import annotations

from typing import Any, TypeGuard

import orjson

from reapi.protocols.errors import InvalidRequest
from reapi.protocols.limits import MAX_MODEL_NAME
from reapi.protocols.sse import encode_event

ROLES = frozenset({"user", "assistant", "system"})

# Every block type the Messages API accepts in a request. Types outside this set are refused
# here; types inside it that a translator cannot express on the target are refused there.
BLOCK_TYPES = frozenset(
    {
        "text",
        "image",
        "document",
        "search_result",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "tool_result",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "container_upload",
        "mcp_tool_use",
        "mcp_tool_result",
        "compaction",
    }
)

# The error types Anthropic documents; its SDKs map each to an exception class.
ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    }
)


def validate_request(raw: Any) -> dict[str, Any]:
    """Return ``raw`` unchanged if it is a well-formed Messages request, else raise."""
    body = validate_count_tokens(raw)
    max_tokens = body.get("max_tokens")
    if not _is_int(max_tokens) or max_tokens < 1:
        raise InvalidRequest("max_tokens: a positive integer is required.", "max_tokens")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and not _is_number(value):
            raise InvalidRequest(f"{name}: must be a number.", name)
    top_k = body.get("top_k")
    if top_k is not None and not _is_int(top_k):
        raise InvalidRequest("top_k: must be an integer.", "top_k")
    stop = body.get("stop_sequences")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise InvalidRequest("stop_sequences: must be an array of strings.", "stop_sequences")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream: must be a boolean.", "stream")
    metadata = body.get("metadata")
    if metadata is not None:
        _check_object(metadata, "metadata")
        _check_type(metadata.get("user_id"), str, "metadata.user_id")
    _check_object(body.get("output_config"), "output_config", optional=True)
    return body


def validate_count_tokens(body: Any) -> dict[str, Any]:
    """The part of a Messages request ``count_tokens`` takes: model, messages, system, tools,
    tool_choice and thinking."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: a non-empty string is required.", "model")
    if len(model) > MAX_MODEL_NAME:
        raise InvalidRequest(
            f"model: at most {MAX_MODEL_NAME} characters are allowed, got {len(model)}.", "model"
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: a non-empty array is required.", "messages")
    for i, message in enumerate(messages):
        _check_message(message, f"messages.{i}")
    _check_system(body.get("system"))
    _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"))
    thinking = body.get("thinking")
    if thinking is not None and not (
        isinstance(thinking, dict) and isinstance(thinking.get("type"), str)
    ):
        raise InvalidRequest("thinking: an object with a type is required.", "thinking")
    return body


def error_body(kind: str, message: str) -> bytes:
    """An Anthropic error envelope; ``kind`` is e.g. ``invalid_request_error``, ``api_error``."""
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


def error_event(kind: str, message: str) -> bytes:
    """The same error as an in-stream ``event: error`` SSE frame. A ``kind`` Anthropic does not
    document (another upstream's error type) goes out as ``api_error``, which SDKs know."""
    return encode_event(error_body(kind if kind in ERROR_TYPES else "api_error", message), "error")


def _check_message(message: Any, path: str) -> None:
    if not isinstance(message, dict):
        raise InvalidRequest(f"{path}: each message must be an object.", path)
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidRequest(
            f"{path}.role: must be 'user' or 'assistant', got {role!r}.", f"{path}.role"
        )
    content = message.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{path}.content: must be a string or an array of content blocks.", f"{path}.content"
        )
    for j, block in enumerate(content):
        _check_block(block, f"{path}.content.{j}")


def _check_block(block: Any, path: str) -> None:
    if not isinstance(block, dict):
        raise InvalidRequest(f"{path}: each content block must be an object.", path)
    kind = block.get("type")
    if not isinstance(kind, str) or kind not in BLOCK_TYPES:
        raise InvalidRequest(f"{path}.type: unknown content block type {kind!r}.", f"{path}.type")
    if kind == "text" and not isinstance(block.get("text"), str):
        raise InvalidRequest(f"{path}.text: a string is required.", f"{path}.text")
    elif kind in ("image", "document"):
        _check_source(block.get("source"), f"{path}.source")
    elif kind == "tool_use":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise InvalidRequest(f"{path}: tool_use needs string id and name.", path)
        if not isinstance(block.get("input"), dict):
            raise InvalidRequest(f"{path}.input: an object is required.", f"{path}.input")
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            raise InvalidRequest(
                f"{path}.tool_use_id: a string is required.", f"{path}.tool_use_id"
            )
        _check_type(block.get("is_error"), bool, f"{path}.is_error")
        content = block.get("content")
        if isinstance(content, list):
            for k, inner in enumerate(content):
                _check_block(inner, f"{path}.content.{k}")
        elif content is not None and not isinstance(content, str):
            raise InvalidRequest(
                f"{path}.content: must be a string or an array of content blocks.",
                f"{path}.content",
            )


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise InvalidRequest("system: must be a string or an array of text blocks.", "system")
    for i, block in enumerate(system):
        if not (isinstance(block, dict) and block.get("type") == "text"):
            raise InvalidRequest(f"system.{i}: only text blocks are allowed.", f"system.{i}")
        if not isinstance(block.get("text"), str):
            raise InvalidRequest(f"system.{i}.text: a string is required.", f"system.{i}.text")


def _check_source(source: Any, path: str) -> None:
    _check_object(source, path)
    if not isinstance(source.get("type"), str):
        raise InvalidRequest(f"{path}.type: a string is required.", f"{path}.type")
    for name in ("media_type", "data", "url", "file_id"):
        _check_type(source.get(name), str, f"{path}.{name}")


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise InvalidRequest("tools: must be an array.", "tools")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise InvalidRequest(f"tools.{i}: each tool needs a string name.", f"tools.{i}")
        _check_type(tool.get("type"), str, f"tools.{i}.type")
        _check_type(tool.get("description"), str, f"tools.{i}.description")
        _check_object(tool.get("input_schema"), f"tools.{i}.input_schema", optional=True)


def _check_tool_choice(choice: Any) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict):
        raise InvalidRequest("tool_choice: an object with a type is required.", "tool_choice")
    if not isinstance(choice.get("type"), str):
        raise InvalidRequest("tool_choice.type: a string is required.", "tool_choice.type")
    if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
        raise InvalidRequest("tool_choice.name: a string is required.", "tool_choice.name")
    if not isinstance(choice.get("disable_parallel_tool_use", False), bool):
        raise InvalidRequest(
            "tool_choice: disable_parallel_tool_use must be a boolean.", "tool_choice"
        )


def _check_object(value: Any, path: str, *, optional: bool = False) -> None:
    if not (isinstance(value, dict) or (optional and value is None)):
        raise InvalidRequest(f"{path}: an object is required.", path)


_KIND_NAMES = {bool: "a boolean", str: "a string"}


def _check_type(value: Any, kind: type, path: str) -> None:
    """``value`` is absent (None) or of ``kind``."""
    if value is not None and not isinstance(value, kind):
        raise InvalidRequest(f"{path}: must be {_KIND_NAMES[kind]}.", path)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def count_answer_chars(answer: dict[str, Any]) -> int:
    """Characters of generated output in a whole (non-streamed) answer, for estimating its
    tokens when the upstream did not report them."""
    total = 0
    content = answer.get("content")
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        for key in ("text", "thinking"):
            if isinstance(block.get(key), str):
                total += len(block[key])
        if block.get("type") == "tool_use":
            total += len(str(block.get("name") or "")) + len(orjson.dumps(block.get("input")))
    return total
