"""Anthropic Messages bodies to and from the canonical model (requests and whole responses).

Parsing raises ``InvalidRequest`` for anything valid in Anthropic that the canonical model cannot
carry (server tools, file-id images, citations-only blocks...), so a client learns at once that
its request cannot go to this upstream instead of having part of it vanish. Rendering makes the
choices Anthropic forces: one ``system``, strictly alternating turns, tool results first in
their user turn, no empty text blocks. Stream events live in ``anthropic_stream``.
"""

from __future__ import annotations

from typing import Any, cast

from reapi.protocols.canonical import (
    IMAGE_MEDIA_TYPES,
    Document,
    Effort,
    FinishReason,
    Image,
    Message,
    Part,
    Request,
    Response,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from reapi.protocols.errors import InvalidRequest
from reapi.protocols.usage import Usage

# reasoning_effort has no Anthropic counterpart; these budgets follow the spacing Anthropic's
# extended-thinking guide suggests (1,024 minimum, "start small, raise for harder tasks").
THINKING_BUDGETS: dict[Effort, int] = {
    "low": 1024,
    "medium": 4096,
    "high": 16384,
    "xhigh": 32768,
    "max": 65536,
}
MIN_THINKING_BUDGET = 1024
# Models that only think adaptively take an effort instead of a budget; Anthropic's scale has
# no "minimal" (which turns thinking off, as above) and calls its top level "max".
ADAPTIVE_EFFORTS: dict[Effort, str] = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "max",
    "max": "max",
}

FINISH_TO_STOP_REASON: dict[FinishReason, str] = {
    "stop": "end_turn",
    "stop_sequence": "stop_sequence",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
STOP_REASON_TO_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop_sequence",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}


def finish_from_stop_reason(stop_reason: Any) -> FinishReason:
    return (
        STOP_REASON_TO_FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    )


def usage_to_anthropic(usage: Usage) -> dict[str, int]:
    """Anthropic counts cache reads and writes apart from ``input_tokens``; undo the sum."""
    return {
        "input_tokens": usage.uncached_prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def request_to_canonical(body: dict[str, Any]) -> Request:
    """Parse a request already checked by ``anthropic_messages.validate_request``."""
    messages = [_message_to_canonical(m, f"messages.{i}") for i, m in enumerate(body["messages"])]
    metadata = body.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    output_config = body.get("output_config")
    out_format = output_config.get("format") if isinstance(output_config, dict) else None
    json_schema = out_format.get("schema") if isinstance(out_format, dict) else None
    parallel, choice = _tool_choice_to_canonical(body.get("tool_choice"))
    return Request(
        model=body["model"],
        messages=messages,
        max_tokens=body["max_tokens"],
        system=_system_to_canonical(body.get("system")),
        stream=body.get("stream") is True,
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        stop=list(body.get("stop_sequences") or []),
        tools=[_tool_to_canonical(t, f"tools.{i}") for i, t in enumerate(body.get("tools") or [])],
        tool_choice=choice,
        parallel_tool_calls=parallel,
        user=user if isinstance(user, str) else None,
        json_schema=json_schema if isinstance(json_schema, dict) else None,
    )


def request_from_canonical(req: Request) -> dict[str, Any]:
    system = req.system + [
        p.text for m in req.messages if m.role == "system" for p in m.parts if isinstance(p, Text)
    ]
    system = [s for s in system if s]
    messages = _messages_from_canonical(req.messages)
    if not messages:
        raise InvalidRequest(
            "messages: at least one non-empty user or assistant message is needed.", "messages"
        )
    if any(not s.strip() for s in req.stop):
        # Anthropic refuses these; dropping them would let the answer run past where the
        # client asked it to stop.
        raise InvalidRequest(
            "stop: this model cannot stop on empty or whitespace-only sequences.", "stop"
        )
    body: dict[str, Any] = {"model": req.model, "max_tokens": req.max_tokens, "messages": messages}
    if len(system) == 1:
        body["system"] = system[0]
    elif system:
        body["system"] = [{"type": "text", "text": s} for s in system]
    thinking = _thinking_budget(req)
    if thinking is not None:
        # Anthropic refuses temperature/top_p changes alongside thinking; OpenAI's reasoning
        # models ignore them too, so the client asked for reasoning, not for a sampling tweak.
        if req.adaptive_thinking:
            body["thinking"] = {"type": "adaptive"}
        else:
            body["thinking"] = {"type": "enabled", "budget_tokens": thinking}
    else:
        if req.temperature is not None:
            if not 0 <= req.temperature <= 1:
                # OpenAI allows up to 2; squeezing it into Anthropic's range would change what
                # the client asked for.
                raise InvalidRequest(
                    "temperature: this model accepts values from 0 to 1.", "temperature"
                )
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
    if req.stop:
        body["stop_sequences"] = req.stop
    if req.stream:
        body["stream"] = True
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if req.tools:
        body["tools"] = [
            {"name": t.name, "input_schema": t.parameters}
            | ({"description": t.description} if t.description else {})
            for t in req.tools
        ]
        choice = _tool_choice_from_canonical(req.tool_choice, req.parallel_tool_calls)
        if choice is not None:
            body["tool_choice"] = choice
    output_config: dict[str, Any] = {}
    if req.json_schema is not None:
        output_config["format"] = {"type": "json_schema", "schema": req.json_schema}
    if thinking is not None and req.adaptive_thinking and req.reasoning_effort is not None:
        output_config["effort"] = ADAPTIVE_EFFORTS[req.reasoning_effort]
    if output_config:
        body["output_config"] = output_config
    return body


def response_to_canonical(body: dict[str, Any]) -> Response:
    parts: list[Text | ToolCall | Thinking] = []
    for block in body.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            parts.append(Text(block.get("text") or ""))
        elif kind == "tool_use":
            args = block.get("input")
            call_id, name = str(block.get("id") or ""), str(block.get("name") or "")
            parts.append(ToolCall(call_id, name, args if isinstance(args, dict) else {}))
        elif kind == "thinking":
            signature = block.get("signature")
            parts.append(
                Thinking(
                    block.get("thinking") or "",
                    signature if isinstance(signature, str) and signature else None,
                )
            )
        # Server-tool blocks only answer server tools, which no translated request can carry.
    stop_sequence = body.get("stop_sequence")
    return Response(
        id=str(body.get("id") or ""),
        parts=parts,
        finish_reason=finish_from_stop_reason(body.get("stop_reason")),
        usage=Usage.from_anthropic(body.get("usage") or {}),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
    )


def response_from_canonical(resp: Response, *, model: str, message_id: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for part in resp.parts:
        if isinstance(part, Thinking):
            # No signature exists for thinking that did not come from Anthropic; an empty one
            # parses in every SDK, and a client sending it back is translated to OpenAI again,
            # where thinking is dropped, so it is never checked.
            content.append(
                {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}
            )
        elif isinstance(part, Text):
            if part.text:
                content.append({"type": "text", "text": part.text})
        else:
            content.append(
                {"type": "tool_use", "id": part.id, "name": part.name, "input": part.arguments}
            )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": FINISH_TO_STOP_REASON[resp.finish_reason],
        "stop_sequence": resp.stop_sequence,
        "usage": usage_to_anthropic(resp.usage),
    }


def _system_to_canonical(system: Any) -> list[str]:
    if isinstance(system, str):
        return [system] if system else []
    return [b["text"] for b in system or [] if b.get("text")]


def _message_to_canonical(message: dict[str, Any], path: str) -> Message:
    content = message["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    parts: list[Part] = []
    for j, block in enumerate(blocks):
        part = _block_to_canonical(block, f"{path}.content.{j}")
        if part is not None:
            parts.append(part)
    if message["role"] == "system" and not all(isinstance(p, Text) for p in parts):
        raise InvalidRequest(f"{path}: system messages may only hold text.", path)
    return Message(message["role"], parts)


def _block_to_canonical(block: dict[str, Any], path: str) -> Part | None:
    kind = block["type"]
    if kind == "text":
        return Text(block["text"])
    if kind == "image":
        return _image_to_canonical(block["source"], f"{path}.source")
    if kind == "document":
        return _document_to_canonical(block, path)
    if kind == "tool_use":
        return ToolCall(block["id"], block["name"], block["input"])
    if kind == "tool_result":
        return _tool_result_to_canonical(block, path)
    if kind in ("thinking", "redacted_thinking"):
        # Earlier turns' thinking has no place in an OpenAI request; the model never needs it.
        return None
    raise InvalidRequest(
        f"{path}.type: content blocks of type {kind!r} cannot be sent to this model.",
        f"{path}.type",
    )


def _image_to_canonical(source: dict[str, Any], path: str) -> Image:
    kind = source.get("type")
    if kind == "url" and isinstance(source.get("url"), str):
        return Image(url=source["url"])
    if kind == "base64" and isinstance(source.get("data"), str):
        media_type = source.get("media_type")
        if not isinstance(media_type, str) or media_type not in IMAGE_MEDIA_TYPES:
            raise InvalidRequest(
                f"{path}.media_type: unsupported image type {media_type!r}.", f"{path}.media_type"
            )
        return Image(data=source["data"], media_type=media_type)
    raise InvalidRequest(
        f"{path}.type: image sources of type {kind!r} cannot be sent to this model.",
        f"{path}.type",
    )


def _document_to_canonical(block: dict[str, Any], path: str) -> Text | Document:
    source = block["source"]
    kind = source.get("type")
    title = block.get("title") if isinstance(block.get("title"), str) else None
    if kind == "text" and isinstance(source.get("data"), str):
        return Text(source["data"])
    if (
        kind == "base64"
        and source.get("media_type") == "application/pdf"
        and isinstance(source.get("data"), str)
    ):
        return Document(data=source["data"], title=title)
    raise InvalidRequest(
        f"{path}.source: only base64 PDF and plain-text documents can be sent to this model.",
        f"{path}.source",
    )


def _tool_result_to_canonical(block: dict[str, Any], path: str) -> ToolResult:
    content = block.get("content")
    parts: list[Text | Image] = []
    if isinstance(content, str):
        parts.append(Text(content))
    for k, inner in enumerate(content if isinstance(content, list) else []):
        part = _block_to_canonical(inner, f"{path}.content.{k}")
        if not isinstance(part, Text | Image):
            raise InvalidRequest(
                f"{path}.content.{k}: tool results may only hold text and images here.",
                f"{path}.content.{k}",
            )
        parts.append(part)
    return ToolResult(block["tool_use_id"], parts, block.get("is_error") is True)


def _tool_to_canonical(tool: dict[str, Any], path: str) -> Tool:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise InvalidRequest(
            f"{path}.type: Anthropic server tool {kind!r} cannot be used with this model.",
            f"{path}.type",
        )
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise InvalidRequest(f"{path}.input_schema: an object is required.", f"{path}.input_schema")
    description = tool.get("description")
    return Tool(tool["name"], description if isinstance(description, str) else None, schema)


def _tool_choice_to_canonical(choice: Any) -> tuple[bool | None, ToolChoice | None]:
    if not isinstance(choice, dict):
        return None, None
    parallel = False if choice.get("disable_parallel_tool_use") is True else None
    kind = choice.get("type")
    if kind == "auto":
        return parallel, ToolChoice("auto")
    if kind == "any":
        return parallel, ToolChoice("required")
    if kind == "none":
        return parallel, ToolChoice("none")
    if kind == "tool" and isinstance(choice.get("name"), str):
        return parallel, ToolChoice("tool", choice["name"])
    raise InvalidRequest(f"tool_choice.type: unknown tool choice {kind!r}.", "tool_choice.type")


def _tool_choice_from_canonical(
    choice: ToolChoice | None, parallel: bool | None
) -> dict[str, Any] | None:
    if choice is None and parallel is not False:
        return None
    mode = choice.mode if choice is not None else "auto"
    if mode == "none":
        return {"type": "none"}
    out: dict[str, Any] = {"type": {"auto": "auto", "required": "any", "tool": "tool"}[mode]}
    if mode == "tool" and choice is not None:
        out["name"] = choice.name
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _thinking_budget(req: Request) -> int | None:
    """The thinking budget for ``reasoning_effort``, or None where Anthropic would refuse it.

    Anthropic rejects thinking with a forced tool choice, and rejects it when the last
    assistant turn called tools without its signed thinking block, which an OpenAI chat client
    can never send back (a Responses client can, in ``encrypted_content``); a tool loop without
    one therefore continues without thinking. For adaptive-only models the number returned
    only says "think": the effort goes out instead.
    """
    if req.reasoning_effort is None or req.reasoning_effort == "minimal":
        return None
    if req.tool_choice is not None and req.tool_choice.mode in ("required", "tool"):
        return None
    last_assistant = next((m for m in reversed(req.messages) if m.role == "assistant"), None)
    if (
        last_assistant
        and any(isinstance(p, ToolCall) for p in last_assistant.parts)
        and not any(isinstance(p, Thinking) and p.signature for p in last_assistant.parts)
    ):
        return None
    if req.adaptive_thinking:
        return req.max_tokens
    budget = min(THINKING_BUDGETS[req.reasoning_effort], req.max_tokens - 1)
    return budget if budget >= MIN_THINKING_BUDGET else None


def _messages_from_canonical(messages: list[Message]) -> list[dict[str, Any]]:
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for message in messages:
        if message.role == "system":
            continue
        blocks = [b for b in map(_block_from_canonical, message.parts) if b is not None]
        if not blocks:
            continue
        if turns and turns[-1][0] == message.role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((message.role, blocks))
    out: list[dict[str, Any]] = []
    for role, blocks in turns:
        # Anthropic wants a turn's tool results, and an assistant turn's thinking, before
        # anything else in it.
        blocks.sort(key=lambda b: b["type"] not in ("tool_result", "thinking"))
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            out.append({"role": role, "content": blocks[0]["text"]})
        else:
            out.append({"role": role, "content": blocks})
    return out


def _block_from_canonical(part: Part) -> dict[str, Any] | None:
    if isinstance(part, Text):
        # Anthropic refuses empty text blocks; an empty string carries nothing anyway.
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, Image):
        return {"type": "image", "source": _image_source(part)}
    if isinstance(part, Document):
        source = {"type": "base64", "media_type": part.media_type, "data": part.data}
        return {"type": "document", "source": source} | (
            {"title": part.title} if part.title else {}
        )
    if isinstance(part, ToolCall):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": part.arguments}
    if isinstance(part, Thinking):
        # Only a signed block is the model's own; Anthropic refuses any other.
        if not part.signature:
            return None
        return {"type": "thinking", "thinking": part.text, "signature": part.signature}
    if isinstance(part, ToolResult):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id}
        if len(part.content) == 1 and isinstance(part.content[0], Text):
            block["content"] = part.content[0].text
        else:
            block["content"] = [
                cast(dict[str, Any], _block_from_canonical(p))
                for p in part.content
                if not (isinstance(p, Text) and not p.text)
            ]
        if part.is_error:
            block["is_error"] = True
        return block
    return None


def _image_source(image: Image) -> dict[str, Any]:
    if image.url is not None:
        return {"type": "url", "url": image.url}
    return {"type": "base64", "media_type": image.media_type, "data": image.data}
