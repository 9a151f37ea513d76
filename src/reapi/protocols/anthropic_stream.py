"""Anthropic Messages streams to and from canonical stream events.

``AnthropicStreamReader`` reads an upstream's events (message_start, content blocks,
message_delta, message_stop; ``ping`` and event types added later are skipped, as Anthropic's
versioning policy asks). ``AnthropicStreamWriter`` produces the documented order for a client:
``message_start``, ``ping``, then per content block ``content_block_start``, deltas,
``content_block_stop``, then ``message_delta`` with stop reason and usage, then
``message_stop``.

Anthropic content blocks cannot interleave, while OpenAI upstreams may stream several tool
calls at once. The writer therefore streams the first tool call of a run live and holds later
calls of the same run until the run ends (text follows, or the answer finishes), then emits
each whole: a call never arrives split across two blocks or out of order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from reapi.protocols.anthropic_convert import (
    FINISH_TO_STOP_REASON,
    finish_from_stop_reason,
    usage_to_anthropic,
)
from reapi.protocols.anthropic_messages import error_event
from reapi.protocols.canonical import (
    MALFORMED_EVENT,
    Finish,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolArgumentsDelta,
    ToolCallStart,
    UsageReport,
    upstream_error,
)
from reapi.protocols.sse import SSEEvent, encode_event
from reapi.protocols.usage import Usage


@dataclass(slots=True)
class _UpstreamBlock:
    kind: str
    tool_index: int = -1
    start_input: Any = None
    saw_delta: bool = False


class AnthropicStreamReader:
    """Events in, canonical events out. ``call_id_prefix`` names calls a server left unnamed."""

    def __init__(self, *, call_id_prefix: str) -> None:
        self._call_id_prefix = call_id_prefix
        self._blocks: dict[int, _UpstreamBlock] = {}
        self._tool_calls = 0
        self._usage: dict[str, Any] = {}
        self._ended = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self._ended:
            return []
        try:
            return self._read(orjson.loads(event.data), event.event)
        except (ValueError, AttributeError, TypeError, KeyError):
            # Not JSON, or JSON of a shape Anthropic never sends: the stream is corrupt, and
            # the client must hear that rather than get a shortened answer.
            self._ended = True
            return [StreamError("api_error", MALFORMED_EVENT)]

    def _read(self, data: Any, event_name: str | None) -> list[StreamEvent]:
        if not isinstance(data, dict):
            raise TypeError("an event must be a JSON object")
        kind = data.get("type") or event_name
        if kind == "message_start":
            message = data.get("message") or {}
            self._usage = dict(message.get("usage") or {})
            return [StreamStart()]
        if kind == "content_block_start":
            return self._block_start(data.get("index"), data.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(data.get("index"), data.get("delta") or {})
        if kind == "content_block_stop":
            return self._block_stop(data.get("index"))
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            self._ended = True
            return [StreamEnd()]
        if kind == "error":
            self._ended = True
            return [upstream_error(data.get("error"))]
        return []

    def _block_start(self, index: Any, block: dict[str, Any]) -> list[StreamEvent]:
        kind = str(block.get("type"))
        state = self._blocks[index] = _UpstreamBlock(kind)
        if kind == "text" and _text(block, "text"):
            return [TextDelta(_text(block, "text"))]
        if kind == "thinking" and _text(block, "thinking"):
            return [ThinkingDelta(_text(block, "thinking"))]
        if kind == "tool_use":
            state.tool_index = self._tool_calls
            state.start_input = block.get("input")
            self._tool_calls += 1
            call_id = block.get("id") or f"{self._call_id_prefix}{state.tool_index}"
            return [ToolCallStart(state.tool_index, str(call_id), str(block.get("name")))]
        return []

    def _block_delta(self, index: Any, delta: dict[str, Any]) -> list[StreamEvent]:
        state = self._blocks.get(index)
        kind = delta.get("type")
        if kind == "text_delta" and _text(delta, "text"):
            return [TextDelta(_text(delta, "text"))]
        if kind == "thinking_delta" and _text(delta, "thinking"):
            return [ThinkingDelta(_text(delta, "thinking"))]
        if kind == "signature_delta" and _text(delta, "signature"):
            return [ThinkingSignature(_text(delta, "signature"))]
        if kind == "input_json_delta" and state is not None and state.kind == "tool_use":
            state.saw_delta = True
            if _text(delta, "partial_json"):
                return [ToolArgumentsDelta(state.tool_index, _text(delta, "partial_json"))]
        return []  # citation deltas have no counterpart

    def _block_stop(self, index: Any) -> list[StreamEvent]:
        state = self._blocks.get(index)
        # Anthropic starts tool_use with input {} and streams the JSON; a block that carried
        # its whole input at the start instead still has to reach the client.
        if state and state.kind == "tool_use" and not state.saw_delta and state.start_input:
            return [ToolArgumentsDelta(state.tool_index, orjson.dumps(state.start_input).decode())]
        return []

    def _message_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        delta = data.get("delta") or {}
        if delta.get("stop_reason"):
            stop_sequence = delta.get("stop_sequence")
            out.append(
                Finish(
                    finish_from_stop_reason(delta["stop_reason"]),
                    stop_sequence if isinstance(stop_sequence, str) else None,
                )
            )
        usage = data.get("usage")
        if isinstance(usage, dict):
            # message_delta counts are cumulative and may omit what message_start already said.
            self._usage.update({k: v for k, v in usage.items() if v is not None})
            out.append(UsageReport(Usage.from_anthropic(self._usage)))
        return out


@dataclass(slots=True)
class _HeldCall:
    id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class AnthropicStreamWriter:
    def __init__(self, *, model: str, message_id: str, estimated_input_tokens: int) -> None:
        self._message_id = message_id
        self._model = model
        self._estimated_input_tokens = estimated_input_tokens
        self._started = False
        self._next_index = 0
        self._open: Literal["text", "thinking", "tool_use"] | None = None
        self._open_call = -1
        self._held: dict[int, _HeldCall] = {}
        self._finish: Finish | None = None
        self._usage: Usage | None = None

    def write(self, event: StreamEvent) -> list[bytes]:
        if isinstance(event, StreamError):
            return [error_event(event.kind, event.message)]
        out = [] if self._started else self._start()
        if isinstance(event, TextDelta):
            out += self._into("text")
            out.append(self._delta({"type": "text_delta", "text": event.text}))
        elif isinstance(event, ThinkingDelta):
            out += self._into("thinking")
            out.append(self._delta({"type": "thinking_delta", "thinking": event.text}))
        elif isinstance(event, ToolCallStart):
            if self._open == "tool_use":
                self._held[event.index] = _HeldCall(event.id, event.name)
            else:
                out += self._close_run()
                out += self._open_block(
                    {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
                )
                self._open, self._open_call = "tool_use", event.index
        elif isinstance(event, ToolArgumentsDelta):
            if self._open == "tool_use" and event.index == self._open_call:
                out.append(self._delta({"type": "input_json_delta", "partial_json": event.json}))
            elif event.index in self._held:
                self._held[event.index].arguments.append(event.json)
        elif isinstance(event, Finish):
            self._finish = event
        elif isinstance(event, UsageReport):
            self._usage = event.usage
        elif isinstance(event, StreamEnd):
            out += self._close_run()
            out += self._end()
        return out

    def _start(self) -> list[bytes]:
        self._started = True
        message: dict[str, Any] = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._estimated_input_tokens, "output_tokens": 0},
        }
        return [
            _event("message_start", {"type": "message_start", "message": message}),
            _event("ping", {"type": "ping"}),
        ]

    def _into(self, kind: Literal["text", "thinking"]) -> list[bytes]:
        if self._open == kind:
            return []
        out = self._close_run()
        block = (
            {"type": "text", "text": ""}
            if kind == "text"
            else {"type": "thinking", "thinking": "", "signature": ""}
        )
        out += self._open_block(block)
        self._open = kind
        return out

    def _open_block(self, block: dict[str, Any]) -> list[bytes]:
        data = {"type": "content_block_start", "index": self._next_index, "content_block": block}
        return [_event("content_block_start", data)]

    def _delta(self, delta: dict[str, Any]) -> bytes:
        data = {"type": "content_block_delta", "index": self._next_index, "delta": delta}
        return _event("content_block_delta", data)

    def _close_block(self) -> list[bytes]:
        if self._open is None:
            return []
        stop = _event(
            "content_block_stop", {"type": "content_block_stop", "index": self._next_index}
        )
        self._open = None
        self._next_index += 1
        return [stop]

    def _close_run(self) -> list[bytes]:
        """Close the open block, then emit each held tool call as a whole block, in order."""
        out = self._close_block()
        held, self._held = self._held, {}
        for call in held.values():
            out += self._open_block(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            )
            self._open = "tool_use"
            if call.arguments:
                json = "".join(call.arguments)
                out.append(self._delta({"type": "input_json_delta", "partial_json": json}))
            out += self._close_block()
        return out

    def _end(self) -> list[bytes]:
        finish = self._finish or Finish("stop")
        usage = usage_to_anthropic(self._usage) if self._usage is not None else {"output_tokens": 0}
        delta = {
            "stop_reason": FINISH_TO_STOP_REASON[finish.reason],
            "stop_sequence": finish.stop_sequence,
        }
        return [
            _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}),
            _event("message_stop", {"type": "message_stop"}),
        ]


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _event(name: str, data: dict[str, Any]) -> bytes:
    return encode_event(orjson.dumps(data), name)
