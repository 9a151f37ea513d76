"""Translation between OpenAI Chat Completions, Anthropic Messages and the OpenAI Responses API
(a client format only): the gateway's one entry.

Every direction goes wire -> canonical -> wire (``openai_convert``, ``anthropic_convert``,
``openai_stream``, ``anthropic_stream``); this module only composes them and keeps the running
facts billing needs from a stream. Request translators raise ``InvalidRequest`` (a 400 in the
client's format) for what the target cannot express; response translators never raise on an
upstream's odd but parseable answer, and raise ``UpstreamError`` (a 502) for one of a shape its
format never has. docs/translation.md lists every field and what is dropped.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any, Literal, Protocol

from reapi.errors import RETRY_IS_SAFE, UpstreamError
from reapi.protocols import anthropic_convert, openai_convert, responses, responses_render
from reapi.protocols.anthropic_stream import AnthropicStreamReader, AnthropicStreamWriter
from reapi.protocols.canonical import (
    Finish,
    Response,
    StreamEnd,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    ToolArgumentsDelta,
    ToolCall,
    UsageReport,
)
from reapi.protocols.openai_stream import OpenAIStreamReader, OpenAIStreamWriter
from reapi.protocols.responses_stream import ResponsesStreamWriter
from reapi.protocols.sse import SSEEvent
from reapi.protocols.usage import Usage


def openai_request_to_anthropic(
    body: dict[str, Any], *, adaptive_thinking: bool = False
) -> dict[str, Any]:
    """``body``: a validated OpenAI chat request whose ``model`` is already the upstream's name
    and whose ``max_tokens`` is filled. Returns the Anthropic request body. ``adaptive_thinking``
    marks models that take an effort instead of a thinking budget."""
    req = openai_convert.request_to_canonical(body)
    req.adaptive_thinking = adaptive_thinking
    return anthropic_convert.request_from_canonical(req)


def anthropic_request_to_openai(body: dict[str, Any]) -> dict[str, Any]:
    """``body``: a request ``anthropic_messages.validate_request`` accepted. A streaming
    request asks the upstream for ``stream_options.include_usage`` so billing gets counts."""
    return openai_convert.request_from_canonical(anthropic_convert.request_to_canonical(body))


def anthropic_response_to_openai(
    body: dict[str, Any], *, model: str, completion_id: str, created: int
) -> dict[str, Any]:
    """``model`` is the name echoed to the client. This layer draws no ids and reads no clock:
    the caller passes ``completion_id`` (``chatcmpl-...``: the upstream's ``msg_`` id is in the
    other format's shape) and ``created`` (Unix seconds). A tool call the upstream left
    unnamed gets ``<completion_id>_call_<n>``, as in streams."""
    try:
        resp = anthropic_convert.response_to_canonical(body)
        return openai_convert.response_from_canonical(
            _name_calls(resp, f"{completion_id}_call_"),
            model=model,
            completion_id=completion_id,
            created=created,
        )
    except _MALFORMED:
        raise UpstreamError(f"The upstream sent an invalid answer. {RETRY_IS_SAFE}") from None


def openai_response_to_anthropic(
    body: dict[str, Any], *, model: str, message_id: str
) -> dict[str, Any]:
    """``model`` is the name echoed to the client; ``message_id`` is the caller's ``msg_...``
    id (the upstream's ``chatcmpl-`` id is in the other format's shape). A tool call the
    upstream left unnamed gets ``<message_id>_call_<n>``, as in streams."""
    try:
        resp = openai_convert.response_to_canonical(body)
        return anthropic_convert.response_from_canonical(
            _name_calls(resp, f"{message_id}_call_"), model=model, message_id=message_id
        )
    except _MALFORMED:
        raise UpstreamError(f"The upstream sent an invalid answer. {RETRY_IS_SAFE}") from None


# What reading an answer of a shape its format never has raises (a list where an object
# belongs, a number where text does): the upstream's fault, a 502, never the gateway's 500.
_MALFORMED = (AttributeError, TypeError, KeyError, ValueError, IndexError)


def _name_calls(resp: Response, prefix: str) -> Response:
    """``<prefix><n>`` for each unnamed call, ``n`` counting every call as streams do."""
    if all(p.id for p in resp.parts if isinstance(p, ToolCall)):
        return resp
    calls = itertools.count()
    parts: list[Text | ToolCall | Thinking] = []
    for part in resp.parts:
        if isinstance(part, ToolCall):
            n = next(calls)
            part = part if part.id else replace(part, id=f"{prefix}{n}")
        parts.append(part)
    return replace(resp, parts=parts)


class StreamTranslator(Protocol):
    """One upstream stream translated for one client; not shared, not thread-safe.

    After ``finished`` or after an error (the upstream's, or one passed to ``error``), ``feed``
    returns nothing: the client's stream has been ended either way.

    ``usage`` is the upstream's final count once it arrives (None before, and for upstreams that
    never send one). ``output_chars`` counts text, thinking and tool-argument characters as they
    arrive from the upstream, including tool calls the Anthropic writer still holds back to keep
    blocks in order: the upstream generated (and bills) them either way.
    """

    usage: Usage | None
    output_chars: int
    finished: bool

    @property
    def done(self) -> bool:
        """True once the client's stream is over, finished or ended by an error: the caller
        stops reading the upstream (and closes it unless ``finished``)."""
        ...

    def feed(self, event: SSEEvent) -> list[bytes]:
        """One upstream event in, zero or more SSE-framed client events out."""
        ...

    def error(self, message: str) -> list[bytes]:
        """In-stream error events in the client's format for an upstream that broke off."""
        ...

    def close(self) -> list[bytes]:
        """Call at upstream EOF. If the upstream gave its finish reason but dropped the final
        marker ([DONE] / message_stop), this ends the client's stream normally and sets
        ``finished``; otherwise it returns nothing and the caller should use ``error``."""
        ...


class _Reader(Protocol):
    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...


class _Writer(Protocol):
    def write(self, event: StreamEvent) -> list[bytes]: ...


class _Translation:
    __slots__ = ("_done", "_finish_seen", "_reader", "_writer", "finished", "output_chars", "usage")

    def __init__(self, reader: _Reader, writer: _Writer) -> None:
        self._reader = reader
        self._writer = writer
        self._done = False
        self._finish_seen = False
        self.usage: Usage | None = None
        self.output_chars = 0
        self.finished = False

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: SSEEvent) -> list[bytes]:
        if self._done:
            return []
        out: list[bytes] = []
        for item in self._reader.feed(event):
            self._note(item)
            out += self._writer.write(item)
            if self._done:
                break
        return out

    def error(self, message: str) -> list[bytes]:
        if self._done:
            return []
        self._done = True
        return self._writer.write(StreamError("api_error", message))

    def close(self) -> list[bytes]:
        if self._done or not self._finish_seen:
            return []
        self._note(StreamEnd())
        return self._writer.write(StreamEnd())

    def _note(self, item: StreamEvent) -> None:
        if isinstance(item, TextDelta | ThinkingDelta):
            self.output_chars += len(item.text)
        elif isinstance(item, ToolArgumentsDelta):
            self.output_chars += len(item.json)
        elif isinstance(item, UsageReport):
            self.usage = item.usage
        elif isinstance(item, StreamEnd):
            self.finished = self._done = True
        elif isinstance(item, StreamError):
            self._done = True
        elif isinstance(item, Finish):
            self._finish_seen = True


def anthropic_stream_to_openai(
    *, model: str, include_usage: bool, completion_id: str, created: int
) -> StreamTranslator:
    """An Anthropic upstream's events to OpenAI chunks; thinking goes out as
    ``delta.reasoning_content``."""
    writer = OpenAIStreamWriter(
        model=model, completion_id=completion_id, created=created, include_usage=include_usage
    )
    return _Translation(AnthropicStreamReader(call_id_prefix=f"{completion_id}_call_"), writer)


def openai_stream_to_anthropic(
    *, model: str, message_id: str, estimated_input_tokens: int
) -> StreamTranslator:
    """An OpenAI-compatible upstream's chunks to Anthropic events; ``estimated_input_tokens``
    fills ``message_start`` (the upstream reports real counts only at the end, and those go
    out in ``message_delta``)."""
    writer = AnthropicStreamWriter(
        model=model, message_id=message_id, estimated_input_tokens=estimated_input_tokens
    )
    return _Translation(OpenAIStreamReader(call_id_prefix=f"{message_id}_call_"), writer)


UpstreamFormat = Literal["openai", "anthropic"]


def responses_request_to(
    fmt: UpstreamFormat, body: dict[str, Any], *, adaptive_thinking: bool = False
) -> dict[str, Any]:
    """``body``: a Responses request ``responses.validate_request`` accepted, with its model the
    upstream's name and its bound in ``max_output_tokens``. ``adaptive_thinking`` marks models
    that take an effort instead of a thinking budget (Anthropic only)."""
    req = replace(responses.request_to_canonical(body), adaptive_thinking=adaptive_thinking)
    if fmt == "anthropic":
        return anthropic_convert.request_from_canonical(req)
    return openai_convert.request_from_canonical(req)


def response_to_responses(
    fmt: UpstreamFormat,
    body: dict[str, Any],
    echo: responses.Echo,
    *,
    response_id: str,
    created_at: int,
) -> dict[str, Any]:
    """An upstream's whole answer as a Responses ``response`` object; a tool call the upstream
    left unnamed gets the same id it would in a stream."""
    try:
        if fmt == "anthropic":
            resp = anthropic_convert.response_to_canonical(body)
        else:
            resp = openai_convert.response_to_canonical(body)
        return responses_render.response_from_canonical(
            _name_calls(resp, _call_prefix(response_id)),
            echo,
            response_id=response_id,
            created_at=created_at,
        )
    except _MALFORMED:
        raise UpstreamError(f"The upstream sent an invalid answer. {RETRY_IS_SAFE}") from None


def stream_to_responses(
    fmt: UpstreamFormat, echo: responses.Echo, *, response_id: str, created_at: int
) -> StreamTranslator:
    """An upstream's stream (either format) as the Responses API's event stream."""
    writer = ResponsesStreamWriter(echo, response_id=response_id, created_at=created_at)
    prefix = _call_prefix(response_id)
    if fmt == "anthropic":
        return _Translation(AnthropicStreamReader(call_id_prefix=prefix), writer)
    return _Translation(OpenAIStreamReader(call_id_prefix=prefix), writer)


def _call_prefix(response_id: str) -> str:
    return "call_" + response_id.removeprefix("resp_")[:24] + "_"
