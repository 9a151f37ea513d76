"""Canonical stream events to the Responses API's event stream.

The order is OpenAI's: ``response.created`` and ``response.in_progress`` first; then per output
item ``response.output_item.added``, its parts and deltas (``response.content_part.added``,
``response.output_text.delta``...), their ``.done`` events and ``response.output_item.done``;
last ``response.completed`` (``response.incomplete`` when the answer hit its output bound or a
content filter) carrying the whole response and its usage. Every event is ``event: TYPE`` plus
its JSON, with a ``sequence_number`` counting from 0.

A failure is an ``error`` event with the gateway's own code (``upstream_stream_broken``, as on
the other endpoints), then ``response.failed`` whose error code is one the spec allows, and no
``response.completed``: a cut answer never looks whole.

Custom (free-form) tool calls reach the upstream as functions whose arguments wrap the text in
JSON; a partial JSON string is not text yet, so their input goes out whole when the call ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from reapi.protocols.canonical import (
    Finish,
    StreamEnd,
    StreamError,
    StreamEvent,
    TextDelta,
    Thinking,
    ThinkingDelta,
    ThinkingSignature,
    ToolArgumentsDelta,
    ToolCallStart,
    UsageReport,
)
from reapi.protocols.responses import Echo
from reapi.protocols.responses_render import (
    call_item,
    custom_input,
    incomplete_reason,
    item_id,
    message_item,
    reasoning_item,
    response_object,
    text_part,
)
from reapi.protocols.sse import encode_event
from reapi.protocols.usage import Usage

# The gateway's code for a stream that broke, on every endpoint.
STREAM_BROKEN = "upstream_stream_broken"
# Terminal events, before which the gateway writes its cost comment.
END_MARKERS = (b"event: response.completed", b"event: response.incomplete")


@dataclass(slots=True)
class _Item:
    kind: str  # "message", "reasoning" or "call"
    output_index: int
    id: str
    text: list[str] = field(default_factory=list)
    signature: str | None = None
    call_id: str = ""
    name: str = ""


class ResponsesStreamWriter:
    """Canonical events in, SSE-framed Responses events out; one per client stream."""

    def __init__(self, echo: Echo, *, response_id: str, created_at: int) -> None:
        self._echo = echo
        self._id = response_id
        self._created_at = created_at
        self._sequence = 0
        self._started = False
        self._ended = False
        self._output: list[dict[str, Any]] = []
        self._open: _Item | None = None  # the open message or reasoning item
        self._calls: dict[int, _Item] = {}  # open tool calls by canonical index
        self._finish: Finish | None = None
        self._usage: Usage | None = None

    def write(self, event: StreamEvent) -> list[bytes]:
        if self._ended:
            return []
        out = [] if self._started else self._start()
        if isinstance(event, TextDelta) and event.text:
            out += self._into("message")
            assert self._open is not None
            self._open.text.append(event.text)
            out.append(
                self._event(
                    "response.output_text.delta",
                    item_id=self._open.id,
                    output_index=self._open.output_index,
                    content_index=0,
                    delta=event.text,
                    logprobs=[],
                )
            )
        elif isinstance(event, ThinkingDelta) and event.text:
            out += self._into("reasoning")
            assert self._open is not None
            self._open.text.append(event.text)
            out.append(
                self._event(
                    "response.reasoning_summary_text.delta",
                    item_id=self._open.id,
                    output_index=self._open.output_index,
                    summary_index=0,
                    delta=event.text,
                )
            )
        elif isinstance(event, ThinkingSignature):
            if self._open is not None and self._open.kind == "reasoning":
                self._open.signature = event.signature
        elif isinstance(event, ToolCallStart):
            out += self._close_open()
            out += self._open_call(event)
        elif isinstance(event, ToolArgumentsDelta):
            call = self._calls.get(event.index)
            if call is not None:
                call.text.append(event.json)
                if call.name not in self._echo.custom:
                    out.append(
                        self._event(
                            "response.function_call_arguments.delta",
                            item_id=call.id,
                            output_index=call.output_index,
                            delta=event.json,
                        )
                    )
        elif isinstance(event, Finish):
            self._finish = event
        elif isinstance(event, UsageReport):
            self._usage = event.usage
        elif isinstance(event, StreamEnd):
            out += self._close_open()
            out += self._close_calls()
            out += self._end()
        elif isinstance(event, StreamError):
            out += self._fail(event)
        return out

    # Items ---------------------------------------------------------------------------------

    def _next_index(self) -> int:
        self._output.append({})  # a placeholder until the item is done
        return len(self._output) - 1

    def _into(self, kind: str) -> list[bytes]:
        if self._open is not None and self._open.kind == kind:
            return []
        out = self._close_open() + self._close_calls()
        index = self._next_index()
        item = self._open = _Item(
            kind, index, item_id("msg" if kind == "message" else "rs", self._id, index)
        )
        if kind == "message":
            out.append(self._added(item, message_item(item.id, "", "in_progress")))
            out.append(
                self._event(
                    "response.content_part.added",
                    item_id=item.id,
                    output_index=index,
                    content_index=0,
                    part=text_part(""),
                )
            )
        else:
            out.append(self._added(item, reasoning_item(item.id, None)))
            out.append(
                self._event(
                    "response.reasoning_summary_part.added",
                    item_id=item.id,
                    output_index=index,
                    summary_index=0,
                    part={"type": "summary_text", "text": ""},
                )
            )
        return out

    def _close_open(self) -> list[bytes]:
        item, self._open = self._open, None
        if item is None:
            return []
        text = "".join(item.text)
        common = {"item_id": item.id, "output_index": item.output_index}
        if item.kind == "message":
            done = message_item(item.id, text)
            return [
                self._event(
                    "response.output_text.done", **common, content_index=0, text=text, logprobs=[]
                ),
                self._event(
                    "response.content_part.done", **common, content_index=0, part=text_part(text)
                ),
                self._done(item, done),
            ]
        done = reasoning_item(item.id, Thinking(text, item.signature))
        return [
            self._event(
                "response.reasoning_summary_text.done", **common, summary_index=0, text=text
            ),
            self._event(
                "response.reasoning_summary_part.done",
                **common,
                summary_index=0,
                part={"type": "summary_text", "text": text},
            ),
            self._done(item, done),
        ]

    def _open_call(self, event: ToolCallStart) -> list[bytes]:
        index = self._next_index()
        item = _Item(
            "call", index, item_id("fc", self._id, index), call_id=event.id, name=event.name
        )
        self._calls[event.index] = item
        added = call_item(self._echo, item.id, item.call_id, item.name, "", "in_progress")
        return [self._added(item, added)]

    def _close_calls(self) -> list[bytes]:
        out: list[bytes] = []
        calls, self._calls = self._calls, {}
        for call in calls.values():
            arguments = "".join(call.text)
            done = call_item(self._echo, call.id, call.call_id, call.name, arguments, "completed")
            common = {"item_id": call.id, "output_index": call.output_index}
            if call.name in self._echo.custom:
                text = custom_input(arguments)
                if text:
                    out.append(
                        self._event("response.custom_tool_call_input.delta", **common, delta=text)
                    )
                out.append(
                    self._event("response.custom_tool_call_input.done", **common, input=text)
                )
            else:
                out.append(
                    self._event(
                        "response.function_call_arguments.done",
                        **common,
                        name=done["name"],
                        arguments=arguments,
                    )
                )
            out.append(self._done(call, done))
        return out

    def _added(self, item: _Item, body: dict[str, Any]) -> bytes:
        return self._event("response.output_item.added", output_index=item.output_index, item=body)

    def _done(self, item: _Item, body: dict[str, Any]) -> bytes:
        self._output[item.output_index] = body
        return self._event("response.output_item.done", output_index=item.output_index, item=body)

    # The response ---------------------------------------------------------------------------

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        output = [item for item in self._output if item]
        return response_object(
            self._echo,
            response_id=self._id,
            created_at=self._created_at,
            status=status,
            output=output,
            usage=self._usage if status != "in_progress" else None,
            **extra,
        )

    def _start(self) -> list[bytes]:
        self._started = True
        first = self._response("in_progress")
        return [
            self._event("response.created", response=first),
            self._event("response.in_progress", response=first),
        ]

    def _end(self) -> list[bytes]:
        self._ended = True
        incomplete = incomplete_reason(self._finish.reason) if self._finish else None
        if incomplete:
            response = self._response("incomplete", incomplete=incomplete)
            return [self._event("response.incomplete", response=response)]
        return [self._event("response.completed", response=self._response("completed"))]

    def _fail(self, error: StreamError) -> list[bytes]:
        self._ended = True
        code = "rate_limit_exceeded" if "rate_limit" in error.kind else "server_error"
        response = self._response("failed", error={"code": code, "message": error.message})
        return [
            self._event("error", code=STREAM_BROKEN, message=error.message, param=None),
            self._event("response.failed", response=response),
        ]

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return encode_event(orjson.dumps(data), kind)
