"""Canonical answers as the Responses API's ``response`` object and its output items.

Shared by whole answers (``response_from_canonical``) and the stream writer
(``responses_stream``), which builds the same items event by event: a streamed answer ends with
exactly the object a whole one would be. Item ids derive from the response id, so this module
reads no clock and draws no randomness.
"""

from __future__ import annotations

from typing import Any

import orjson

from reapi.protocols.canonical import Response, Text, Thinking
from reapi.protocols.openai_convert import CUSTOM_INPUT, parse_arguments
from reapi.protocols.responses import Echo, seal_thinking
from reapi.protocols.usage import Usage


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def response_object(
    echo: Echo,
    *,
    response_id: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    incomplete: str | None = None,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ``response`` object in any state (the stream's first events carry one too)."""
    out = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": created_at if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": echo.instructions,
        "max_output_tokens": echo.max_output_tokens,
        "model": echo.model,
        "output": output,
        "parallel_tool_calls": echo.parallel_tool_calls,
        "previous_response_id": None,
        "reasoning": echo.reasoning,
        "store": False,
        "temperature": echo.temperature,
        "text": echo.text,
        "tool_choice": echo.tool_choice,
        "tools": echo.tools,
        "top_p": echo.top_p,
        "truncation": "disabled",
        "metadata": echo.metadata,
    }
    if usage is not None:
        out["usage"] = usage_object(usage)
    if echo.user is not None:
        out["user"] = echo.user
    return out


def incomplete_reason(finish: str) -> str | None:
    return {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish)


def item_id(prefix: str, response_id: str, index: int) -> str:
    """Item ids derived from their response's (unique) id and their position in its output."""
    return f"{prefix}_{response_id.removeprefix('resp_')}{index:03d}"


def message_item(item: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": item,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [text_part(text)] if status == "completed" else [],
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(item: str, thinking: Thinking | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": item, "type": "reasoning", "summary": []}
    if thinking is not None:
        if thinking.text:
            out["summary"] = [{"type": "summary_text", "text": thinking.text}]
        sealed = seal_thinking(thinking)
        if sealed is not None:
            out["encrypted_content"] = sealed
    return out


def call_item(
    echo: Echo, item: str, call_id: str, upstream_name: str, arguments: str, status: str
) -> dict[str, Any]:
    """A ``function_call``, or a ``custom_tool_call`` for a free-form tool (whose input is the
    one string the upstream's arguments wrap; ``arguments`` may then still be incomplete)."""
    namespace, name = echo.tool_name(upstream_name)
    if upstream_name in echo.custom:
        out: dict[str, Any] = {
            "id": item,
            "type": "custom_tool_call",
            "call_id": call_id,
            "name": name,
            "input": custom_input(arguments) if status == "completed" else "",
        }
    else:
        out = {
            "id": item,
            "type": "function_call",
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
            "status": status,
        }
    if namespace is not None:
        out["namespace"] = namespace
    return out


def custom_input(arguments: str) -> str:
    """The free-form text of a custom tool call from the function arguments the upstream wrote;
    arguments that are not the expected wrapper are handed over as they are."""
    parsed = parse_arguments(arguments)
    if parsed is not None and isinstance(parsed.get(CUSTOM_INPUT), str):
        return str(parsed[CUSTOM_INPUT])
    return arguments


def response_from_canonical(
    resp: Response, echo: Echo, *, response_id: str, created_at: int
) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    texts: list[str] = []

    def flush() -> None:
        if texts:
            output.append(message_item(item_id("msg", response_id, len(output)), "".join(texts)))
            texts.clear()

    for part in resp.parts:
        if isinstance(part, Text):
            texts.append(part.text)
            continue
        flush()
        if isinstance(part, Thinking):
            output.append(reasoning_item(item_id("rs", response_id, len(output)), part))
        else:
            arguments = orjson.dumps(part.arguments).decode()
            output.append(
                call_item(
                    echo,
                    item_id("fc", response_id, len(output)),
                    part.id,
                    part.name,
                    arguments,
                    "completed",
                )
            )
    flush()
    incomplete = incomplete_reason(resp.finish_reason)
    return response_object(
        echo,
        response_id=response_id,
        created_at=created_at,
        status="incomplete" if incomplete else "completed",
        output=output,
        usage=resp.usage,
        incomplete=incomplete,
    )
