"""The OpenAI Responses API (``POST /v1/responses``): requests into the canonical model.

``validate_request`` checks a body the way OpenAI's own validation would name its errors;
``request_to_canonical`` reads it into the canonical model for a translated upstream (OpenAI
Chat Completions or Anthropic Messages); ``Echo`` keeps the request fields a ``response`` object
repeats. Answers are rendered by ``responses_render`` (whole) and ``responses_stream``.

Tools a translated upstream cannot run are handled so that agents sending them on every call
(Codex does) still work: ``namespace`` tools are flattened (``namespace__name``, mapped back on
the way out), ``custom`` (free-form) tools become function tools taking one string property
``input`` and come back as ``custom_tool_call`` items, and hosted tools (``web_search``,
``file_search``, computer use...) are dropped, unless ``tool_choice`` forces one: that is a 400.

Anthropic thinking survives a round trip through a client that keeps no server state: its text
and signature ride in the reasoning item's ``encrypted_content`` (opaque to the client, as
OpenAI's own is), and a reasoning item sent back with it becomes a signed thinking block again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from reapi.protocols.canonical import (
    IMAGE_MEDIA_TYPES,
    Document,
    Effort,
    Image,
    Message,
    Part,
    Request,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from reapi.protocols.errors import InvalidRequest
from reapi.protocols.openai_convert import CUSTOM_INPUT, EFFORTS, data_url, parse_arguments

# Joins a namespace and a tool name into one function name (both upstreams allow [A-Za-z0-9_-]).
NAMESPACE_JOIN = "__"
# Marks our own encrypted_content, so an opaque blob from elsewhere is never misread.
_SEALED = "reapi.thinking.v1:"
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
# Request fields that need state this gateway does not keep; a 400 beats a silent wrong answer.
_STATEFUL = ("previous_response_id", "conversation", "prompt")


# Validation ---------------------------------------------------------------------------------


def validate_request(body: dict[str, Any]) -> None:
    """Check the fields the gateway reads; unknown fields are accepted (clients such as Codex
    send ``client_metadata``, ``prompt_cache_key`` and others)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: a non-empty string is required.", "model")
    if "input" not in body or body["input"] is None:
        raise InvalidRequest("input: Field required", "input")
    source = body["input"]
    if not isinstance(source, str | list):
        raise InvalidRequest("input: must be a string or an array of input items.", "input")
    if isinstance(source, list) and not source:
        raise InvalidRequest("input: at least one input item is needed.", "input")
    for name in ("stream", "parallel_tool_calls", "store", "background"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise InvalidRequest(f"{name}: must be a boolean.", name)
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidRequest(f"{name}: must be a number.", name)
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest("instructions: must be a string.", "instructions")
    for name in ("tools", "include"):
        if body.get(name) is not None and not isinstance(body[name], list):
            raise InvalidRequest(f"{name}: must be an array.", name)
    for name in ("metadata", "text", "reasoning"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise InvalidRequest(f"{name}: must be an object.", name)
    metadata = body.get("metadata") or {}
    if len(metadata) > 16 or not all(
        isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
        for k, v in metadata.items()
    ):
        raise InvalidRequest(
            "metadata: at most 16 string values, keys up to 64 and values up to 512 characters.",
            "metadata",
        )
    truncation = body.get("truncation")
    if truncation not in (None, "auto", "disabled"):
        raise InvalidRequest("truncation: must be 'auto' or 'disabled'.", "truncation")
    if body.get("background") is True:
        raise InvalidRequest(
            "background: background responses are not supported by this gateway.", "background"
        )
    for name in _STATEFUL:
        if body.get(name) is not None:
            raise InvalidRequest(
                f"{name}: this gateway keeps no responses or conversations; send the whole "
                "conversation in 'input' (with store: false, as stateless clients do).",
                name,
            )


# Request -> canonical -----------------------------------------------------------------------


@dataclass(slots=True)
class Echo:
    """What a ``response`` object repeats from its request, and how tool names map back."""

    model: str
    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    reasoning: dict[str, Any] | None = None
    user: str | None = None
    # function name the upstream sees -> (namespace, name) for namespaced tools
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)
    custom: frozenset[str] = frozenset()

    @classmethod
    def of(cls, body: dict[str, Any], *, model: str) -> Echo:
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
        reasoning = body.get("reasoning")
        text = body.get("text")
        user = body.get("user")
        choice = body.get("tool_choice")
        return cls(
            model=model,
            instructions=body.get("instructions"),
            tools=[_echo_tool(t) for t in tools],
            tool_choice=choice if choice is not None else "auto",
            parallel_tool_calls=body.get("parallel_tool_calls") is not False,
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
            max_output_tokens=body.get("max_output_tokens"),
            metadata=dict(body.get("metadata") or {}),
            text=text
            if isinstance(text, dict) and text.get("format")
            else {"format": {"type": "text"}},
            reasoning=(
                {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}
                if isinstance(reasoning, dict)
                else None
            ),
            user=user if isinstance(user, str) else None,
            namespaced={
                _joined(ns["name"], t["name"]): (ns["name"], t["name"])
                for ns in tools
                if ns.get("type") == "namespace" and isinstance(ns.get("name"), str)
                for t in _array(ns.get("tools"))
                if isinstance(t, dict) and isinstance(t.get("name"), str)
            },
            custom=frozenset(_custom_names(tools)),
        )

    def tool_name(self, upstream_name: str) -> tuple[str | None, str]:
        """(namespace, name) of a call's tool as the client declared it."""
        namespace, name = self.namespaced.get(upstream_name, (None, upstream_name))
        return namespace, name


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") == "function":
        # The response object always names these (the SDK's own types require them).
        return {"strict": None, "parameters": None, "description": None} | tool
    return tool


def _custom_names(tools: list[dict[str, Any]]) -> Iterator[str]:
    for tool in tools:
        if tool.get("type") == "custom" and isinstance(tool.get("name"), str):
            yield tool["name"]
        elif tool.get("type") == "namespace" and isinstance(tool.get("name"), str):
            for inner in _array(tool.get("tools")):
                if isinstance(inner, dict) and inner.get("type") == "custom":
                    yield _joined(tool["name"], str(inner.get("name")))


def _joined(namespace: str, name: str) -> str:
    return f"{namespace}{NAMESPACE_JOIN}{name}"


def request_to_canonical(body: dict[str, Any]) -> Request:
    """Parse a body ``validate_request`` accepted whose output bound the gateway has written
    into ``max_output_tokens``."""
    instructions = body.get("instructions")
    tools = _tools_to_canonical(body.get("tools") or [])
    tools, choice = _tool_choice_to_canonical(body.get("tool_choice"), tools)
    reasoning = body.get("reasoning") or {}
    effort = reasoning.get("effort")
    if effort == "none":
        effort = None
    if effort is not None and (not isinstance(effort, str) or effort not in EFFORTS):
        raise InvalidRequest(f"reasoning.effort: unknown value {effort!r}.", "reasoning.effort")
    json_schema, json_object = _text_format(body.get("text") or {})
    user = body.get("safety_identifier") or body.get("user")
    parallel = body.get("parallel_tool_calls")
    return Request(
        model=body["model"],
        messages=_input_to_canonical(body["input"]),
        max_tokens=body["max_output_tokens"],
        system=[instructions] if instructions else [],
        stream=body.get("stream") is True,
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel if isinstance(parallel, bool) else None,
        user=user if isinstance(user, str) else None,
        reasoning_effort=cast(Effort | None, effort),
        json_schema=json_schema,
        json_object=json_object,
    )


def _input_to_canonical(source: str | list[Any]) -> list[Message]:
    if isinstance(source, str):
        return [Message("user", [Text(source)])]
    messages: list[Message] = []
    for i, item in enumerate(source):
        path = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{path}: must be an object.", path)
        role, parts = _item_to_canonical(item, path)
        if not parts and role != "system":
            continue
        # Consecutive items of one side form one turn (reasoning, text and calls of one answer;
        # the outputs of its calls), which both upstream formats want.
        if messages and role != "system" and messages[-1].role == role:
            messages[-1].parts.extend(parts)
        else:
            messages.append(Message(role, parts))
    return messages


def _item_to_canonical(item: dict[str, Any], path: str) -> tuple[Any, list[Part]]:
    kind = item.get("type")
    if kind == "message" or (kind is None and "role" in item):
        return _message_to_canonical(item, path)
    if kind == "function_call":
        name = _string(item, "name", path)
        namespace = item.get("namespace")
        if isinstance(namespace, str) and namespace:
            name = _joined(namespace, name)
        arguments = parse_arguments(item.get("arguments"))
        if arguments is None:
            raise InvalidRequest(
                f"{path}.arguments: must be a JSON object encoded as a string.",
                f"{path}.arguments",
            )
        return "assistant", [ToolCall(_string(item, "call_id", path), name, arguments)]
    if kind == "custom_tool_call":
        name = _string(item, "name", path)
        namespace = item.get("namespace")
        if isinstance(namespace, str) and namespace:
            name = _joined(namespace, name)
        call = ToolCall(
            _string(item, "call_id", path), name, {CUSTOM_INPUT: _string(item, "input", path)}
        )
        return "assistant", [call]
    if kind in ("function_call_output", "custom_tool_call_output"):
        call_id = _string(item, "call_id", path)
        return "user", [ToolResult(call_id, _tool_output(item.get("output"), f"{path}.output"))]
    if kind == "reasoning":
        return "assistant", [_reasoning_to_canonical(item, path)]
    if kind == "item_reference":
        raise InvalidRequest(
            f"{path}: item references need stored responses, which this gateway does not keep; "
            "send the item itself.",
            f"{path}.type",
        )
    raise InvalidRequest(
        f"{path}.type: input items of type {kind!r} cannot be sent to this model.", f"{path}.type"
    )


def _message_to_canonical(item: dict[str, Any], path: str) -> tuple[Any, list[Part]]:
    role = item.get("role")
    role = _ROLES.get(role) if isinstance(role, str) else None
    if role is None:
        raise InvalidRequest(
            f"{path}.role: must be one of 'user', 'assistant', 'system' or 'developer'.",
            f"{path}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        return role, [Text(content)]
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{path}.content: must be a string or an array of content parts.", f"{path}.content"
        )
    parts: list[Part] = []
    for k, part in enumerate(content):
        here = f"{path}.content[{k}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            parts.append(Text(part["text"]))
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            parts.append(Text(part["refusal"]))
        elif kind == "input_image" and role == "user":
            parts.append(_image(part, here))
        elif kind == "input_file" and role == "user":
            parts.append(_file(part, here))
        else:
            raise InvalidRequest(
                f"{here}.type: content parts of type {kind!r} cannot be sent in a "
                f"{item.get('role')} message.",
                f"{here}.type",
            )
    return role, parts


def _tool_output(output: Any, path: str) -> list[Text | Image]:
    if isinstance(output, str):
        return [Text(output)]
    if not isinstance(output, list):
        raise InvalidRequest(f"{path}: must be a string or an array of content parts.", path)
    parts: list[Text | Image] = []
    for k, part in enumerate(output):
        here = f"{path}[{k}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            parts.append(Text(part["text"]))
        elif kind == "input_image":
            parts.append(_image(part, here))
        else:
            raise InvalidRequest(
                f"{here}.type: tool outputs may only hold text and images here.", f"{here}.type"
            )
    return parts


def _image(part: dict[str, Any], path: str) -> Image:
    url = part.get("image_url")
    if not isinstance(url, str):
        raise InvalidRequest(
            f"{path}.image_url: an http(s) or base64 data: URL is required (file_id needs "
            "OpenAI's file storage).",
            f"{path}.image_url",
        )
    if url[:8].lower().startswith(("http://", "https://")):
        return Image(url=url)
    media_type, data = data_url(url, f"{path}.image_url")
    if media_type == "image/jpg":
        media_type = "image/jpeg"
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequest(
            f"{path}.image_url: image type {media_type!r} is not supported; use PNG, JPEG, GIF "
            "or WebP.",
            f"{path}.image_url",
        )
    return Image(data=data, media_type=media_type)


def _file(part: dict[str, Any], path: str) -> Document:
    file_data = part.get("file_data")
    if not isinstance(file_data, str):
        raise InvalidRequest(
            f"{path}: only inline files (file_data) can be sent to this model.", path
        )
    if file_data[:5].lower() == "data:":
        media_type, data = data_url(file_data, f"{path}.file_data")
    else:
        media_type, data = "application/pdf", file_data  # OpenAI's SDK examples send bare base64
    if media_type != "application/pdf":
        raise InvalidRequest(
            f"{path}.file_data: only PDF files can be sent to this model.", f"{path}.file_data"
        )
    filename = part.get("filename")
    return Document(data=data, title=filename if isinstance(filename, str) else None)


def _reasoning_to_canonical(item: dict[str, Any], path: str) -> Thinking:
    sealed = unseal_thinking(item.get("encrypted_content"))
    if sealed is not None:
        return sealed
    texts = [
        p["text"]
        for key in ("content", "summary")
        for p in _array(item.get(key), f"{path}.{key}")
        if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]
    # Unsigned reasoning is context no upstream accepts back; the converters leave it out.
    return Thinking("\n\n".join(texts))


def seal_thinking(thinking: Thinking) -> str | None:
    """The ``encrypted_content`` that brings a signed thinking block back, or None."""
    if not thinking.signature:
        return None
    packed = orjson.dumps({"thinking": thinking.text, "signature": thinking.signature})
    return _SEALED + base64.urlsafe_b64encode(packed).decode()


def unseal_thinking(value: Any) -> Thinking | None:
    if not isinstance(value, str) or not value.startswith(_SEALED):
        return None
    try:
        packed = orjson.loads(base64.urlsafe_b64decode(value[len(_SEALED) :]))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(packed, dict):
        return None
    text, signature = packed.get("thinking"), packed.get("signature")
    if not isinstance(text, str) or not isinstance(signature, str) or not signature:
        return None
    return Thinking(text, signature)


def _array(value: Any, path: str | None = None) -> list[Any]:
    """``value`` as a list: absent (None) is empty; anything else but a list is a 400 naming
    ``path``, or, with no path (echoing, where the request is checked later), empty."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if path is None:
        return []
    raise InvalidRequest(f"{path}: must be an array.", path)


def _string(item: dict[str, Any], key: str, path: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(f"{path}.{key}: a string is required.", f"{path}.{key}")
    return value


def _tools_to_canonical(tools: list[Any]) -> list[Tool]:
    out: list[Tool] = []
    for i, tool in enumerate(tools):
        path = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in ("function", "custom"):
            out.append(_tool(tool, path))
        elif kind == "namespace":
            namespace = _string(tool, "name", path)
            for j, inner in enumerate(_array(tool.get("tools"), f"{path}.tools")):
                here = f"{path}.tools[{j}]"
                if not isinstance(inner, dict) or inner.get("type") not in ("function", "custom"):
                    raise InvalidRequest(
                        f"{here}.type: a namespace holds function and custom tools.", f"{here}.type"
                    )
                flat = _tool(inner, here)
                out.append(
                    Tool(
                        _joined(namespace, flat.name), flat.description, flat.parameters, flat.kind
                    )
                )
        elif not isinstance(kind, str):
            raise InvalidRequest(f"{path}.type: a string is required.", f"{path}.type")
        # Any other type is a hosted tool (web_search, file_search, computer use, ...) that runs
        # at OpenAI; a translated upstream cannot run it, so the model is not offered it.
    return out


def _tool(tool: dict[str, Any], path: str) -> Tool:
    name = _string(tool, "name", path)
    description = tool.get("description")
    description = description if isinstance(description, str) else None
    if tool["type"] == "function":
        parameters = tool.get("parameters")
        return Tool(
            name,
            description,
            parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}},
        )
    fmt = tool.get("format")
    hint = "Free-form text input."
    if isinstance(fmt, dict) and fmt.get("type") == "grammar":
        # The upstream cannot constrain output to a grammar; the model reads it instead.
        hint = (
            f"The input must follow this {fmt.get('syntax', 'grammar')} grammar:\n"
            f"{fmt.get('definition', '')}"
        )
    parameters = {
        "type": "object",
        "properties": {CUSTOM_INPUT: {"type": "string", "description": hint}},
        "required": [CUSTOM_INPUT],
    }
    return Tool(name, description, parameters, "custom")


def _tool_choice_to_canonical(
    choice: Any, tools: list[Tool]
) -> tuple[list[Tool], ToolChoice | None]:
    if choice is None:
        return tools, None
    if choice in ("auto", "none", "required"):
        if choice == "required" and not tools:
            raise InvalidRequest(
                "tool_choice: 'required' but none of the tools can run on this model (hosted "
                "tools are not offered to it).",
                "tool_choice",
            )
        return tools, ToolChoice(choice) if tools else None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("function", "custom") and isinstance(choice.get("name"), str):
        name = choice["name"]
        if not any(t.name == name for t in tools):
            raise InvalidRequest(
                f"tool_choice.name: no function or custom tool named {name!r} is in 'tools'.",
                "tool_choice.name",
            )
        return tools, ToolChoice("tool", name)
    if kind == "allowed_tools":
        allowed = {
            t["name"]
            for t in _array(choice.get("tools"), "tool_choice.tools")
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        }
        kept = [t for t in tools if t.name in allowed]
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise InvalidRequest(
                "tool_choice.mode: must be 'auto' or 'required'.", "tool_choice.mode"
            )
        if mode == "required" and not kept:
            raise InvalidRequest(
                "tool_choice: none of the allowed tools can run on this model.", "tool_choice"
            )
        return kept, ToolChoice(mode) if kept else None
    if isinstance(kind, str):
        raise InvalidRequest(
            f"tool_choice: forces the hosted tool {kind!r}, which this model cannot run (hosted "
            "tools run only at OpenAI).",
            "tool_choice",
        )
    raise InvalidRequest("tool_choice: unknown tool choice.", "tool_choice")


def _text_format(text: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    fmt = text.get("format")
    if fmt is None:
        return None, False
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None, False
    if kind == "json_object":
        return None, True
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("text.format.schema: an object is required.", "text.format.schema")
        return schema, False
    raise InvalidRequest(
        "text.format.type: must be 'text', 'json_schema' or 'json_object'.", "text.format.type"
    )
