"""OpenAI Chat Completions streams to and from canonical stream events.

``OpenAIStreamReader`` turns an upstream's ``chat.completion.chunk`` events into canonical
events; ``OpenAIStreamWriter`` renders canonical events as the chunks an OpenAI client expects:
a first chunk with ``role``, content and tool-call deltas (one stable ``index`` per call, id and
name in its first delta), a finish chunk, the usage chunk when asked for, then ``[DONE]``.
Errors become ``{"error": {...}}`` data and no ``[DONE]``, so a client never mistakes a cut
answer for a whole one. Only choice 0 is read: translated requests never ask for ``n`` > 1.
"""

from __future__ import annotations

from typing import Any

import orjson

from reapi.protocols.canonical import (
    MALFORMED_EVENT,
    Finish,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgumentsDelta,
    ToolCallStart,
    UsageReport,
    upstream_error,
)
from reapi.protocols.openai_convert import FINISH_TO_OPENAI, finish_from_openai, usage_to_openai
from reapi.protocols.sse import SSEEvent, encode_event
from reapi.protocols.usage import Usage

DONE = b"data: [DONE]\n\n"


def error_chunk(kind: str, message: str) -> bytes:
    """An in-stream error the way OpenAI sends one: an ``error`` object as the event data."""
    error = {"message": message, "type": kind, "param": None, "code": None}
    return encode_event(orjson.dumps({"error": error}))


class OpenAIStreamReader:
    """Chunks in, canonical events out. ``call_id_prefix`` names calls a server left unnamed."""

    def __init__(self, *, call_id_prefix: str) -> None:
        self._call_id_prefix = call_id_prefix
        self._started = False
        self._ended = False
        self._finished = False
        self._calls: dict[int, int] = {}  # upstream tool-call index -> our index

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self._ended:
            return []
        if event.data.strip() == b"[DONE]":
            self._ended = True
            if not self._finished:
                return [StreamError("api_error", "The upstream ended without a finish reason.")]
            return [StreamEnd()]
        try:
            return self._read(orjson.loads(event.data))
        except (ValueError, AttributeError, TypeError, KeyError):
            # Not JSON, or JSON of a shape no OpenAI-compatible server sends: the stream is
            # corrupt, and the client must hear that rather than get a shortened answer.
            self._ended = True
            return [StreamError("api_error", MALFORMED_EVENT)]

    def _read(self, chunk: Any) -> list[StreamEvent]:
        if not isinstance(chunk, dict):
            raise TypeError("an event must be a JSON object")
        if isinstance(chunk.get("error"), dict):
            self._ended = True
            return [upstream_error(chunk["error"])]
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            out.append(StreamStart())
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out.extend(self._choice(choice))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            out.append(UsageReport(Usage.from_openai(usage)))
        return out

    def _choice(self, choice: dict[str, Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        delta = choice.get("delta") or {}
        # DeepSeek and llama.cpp say reasoning_content; vLLM and OpenRouter say reasoning.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out.append(ThinkingDelta(reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            out.append(TextDelta(content))
        for position, call in enumerate(delta.get("tool_calls") or []):
            out.extend(self._tool_call(call, position))
        if choice.get("finish_reason") and not self._finished:
            self._finished = True
            reason, stop_sequence = finish_from_openai(choice)
            out.append(Finish(reason, stop_sequence))
        return out

    def _tool_call(self, call: dict[str, Any], position: int) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        upstream_index = call.get("index", position)
        function = call.get("function") or {}
        index = self._calls.get(upstream_index)
        if index is None:
            index = self._calls[upstream_index] = len(self._calls)
            call_id = call.get("id") or f"{self._call_id_prefix}{index}"
            out.append(ToolCallStart(index, str(call_id), str(function.get("name") or "")))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(ToolArgumentsDelta(index, arguments))
        return out


class OpenAIStreamWriter:
    """Canonical events in, SSE-framed ``chat.completion.chunk`` bytes out."""

    def __init__(self, *, model: str, completion_id: str, created: int, include_usage: bool):
        self._base: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._started = False
        self._finished = False
        self._usage: Usage | None = None

    def write(self, event: StreamEvent) -> list[bytes]:
        out: list[bytes] = []
        if not self._started and not isinstance(event, StreamError):
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if isinstance(event, TextDelta) and event.text:
            out.append(self._chunk({"content": event.text}))
        elif isinstance(event, ThinkingDelta) and event.text:
            out.append(self._chunk({"reasoning_content": event.text}))
        elif isinstance(event, ToolCallStart):
            call = {
                "index": event.index,
                "id": event.id,
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
            out.append(self._chunk({"tool_calls": [call]}))
        elif isinstance(event, ToolArgumentsDelta):
            call = {"index": event.index, "function": {"arguments": event.json}}
            out.append(self._chunk({"tool_calls": [call]}))
        elif isinstance(event, Finish):
            out.extend(self._finish(FINISH_TO_OPENAI[event.reason]))
        elif isinstance(event, UsageReport):
            self._usage = event.usage
        elif isinstance(event, StreamEnd):
            out.extend(self._finish("stop"))
            if self._include_usage and self._usage is not None:
                usage_chunk = self._base | {"choices": [], "usage": usage_to_openai(self._usage)}
                out.append(encode_event(orjson.dumps(usage_chunk)))
            out.append(DONE)
        elif isinstance(event, StreamError):
            out.append(error_chunk(event.kind, event.message))
        return out

    def _finish(self, reason: str) -> list[bytes]:
        if self._finished:
            return []
        self._finished = True
        return [self._chunk({}, reason)]

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk = self._base | {"choices": [choice]}
        if self._include_usage:
            chunk["usage"] = None  # OpenAI's own chunks say null until the usage chunk.
        return encode_event(orjson.dumps(chunk))
