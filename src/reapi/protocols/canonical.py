"""The one internal model OpenAI Chat Completions, Anthropic Messages and the OpenAI Responses
API meet in.

Translators parse a wire body into these types and render them into the other format, so each
format knows only itself and this module. Nothing here is either vendor's wire shape: tool
arguments are parsed JSON (not OpenAI's JSON string), tool results are parts of a user turn
(Anthropic's grouping, because it is the stricter of the two), and finish reasons have their own
names. Fields one format has and the other cannot express are not carried: docs/translation.md
lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from reapi.errors import RETRY_IS_SAFE
from reapi.protocols.usage import Usage


@dataclass(frozen=True, slots=True)
class Text:
    text: str


# The inline image types both formats accept (OpenAI's vision guide and Anthropic's agree).
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


@dataclass(frozen=True, slots=True)
class Image:
    """An image by URL, or inline: ``data`` is base64 and ``media_type`` is then set."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """An inline PDF (base64 ``data``); plain-text documents become ``Text`` instead."""

    data: str
    media_type: str = "application/pdf"
    title: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResult:
    tool_call_id: str
    content: list[Text | Image]
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class Thinking:
    """Reasoning text. ``signature`` is Anthropic's proof that the text is the model's own: only
    a signed block may be sent back to Anthropic, so it travels with the text wherever a format
    can carry it (the Responses API's ``encrypted_content``)."""

    text: str
    signature: str | None = None


Part = Text | Image | Document | ToolCall | ToolResult | Thinking
Role = Literal["system", "user", "assistant"]


@dataclass(slots=True)
class Message:
    """One turn. ``system`` turns only hold ``Text`` (Anthropic clients may send them inline)."""

    role: Role
    parts: list[Part]


@dataclass(frozen=True, slots=True)
class Tool:
    """``kind`` "custom" is a free-form tool (the Responses API's ``custom``): upstreams see a
    function whose input is one string property, and its calls go back to the client as
    free-form calls."""

    name: str
    description: str | None
    parameters: dict[str, Any]
    kind: Literal["function", "custom"] = "function"


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``mode`` "tool" forces the tool called ``name``; "required" forces some tool."""

    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None


Effort = Literal["minimal", "low", "medium", "high", "xhigh", "max"]


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message]
    max_tokens: int
    system: list[str] = field(default_factory=list)
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    reasoning_effort: Effort | None = None
    json_schema: dict[str, Any] | None = None
    # JSON mode without a schema (OpenAI's json_object).
    json_object: bool = False
    # The model refuses thinking budgets and takes adaptive thinking with an effort instead
    # (the catalog's ``adaptive_thinking``); set by the gateway, not by any wire format.
    adaptive_thinking: bool = False


FinishReason = Literal["stop", "stop_sequence", "length", "tool_calls", "content_filter"]


@dataclass(slots=True)
class Response:
    id: str
    parts: list[Text | ToolCall | Thinking]
    finish_reason: FinishReason
    usage: Usage
    stop_sequence: str | None = None


@dataclass(frozen=True, slots=True)
class StreamStart:
    """The upstream has started answering (its first event arrived)."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingSignature:
    """The signature of the thinking streamed since the last one (Anthropic's signature_delta)."""

    signature: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """``index`` counts tool calls of this answer from 0 in order of appearance."""

    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolArgumentsDelta:
    index: int
    json: str


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason
    stop_sequence: str | None = None


@dataclass(frozen=True, slots=True)
class UsageReport:
    """The upstream's final token counts."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The upstream's own end-of-answer marker (message_stop, [DONE])."""


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error the upstream reported inside the stream; ``kind`` is the upstream's error type."""

    kind: str
    message: str


# What a client hears when an upstream event is not JSON, not an object, or of a shape its
# format never has: the stream is corrupt, so it ends like a broken one, and is not charged.
MALFORMED_EVENT = f"The upstream sent a malformed stream event. {RETRY_IS_SAFE}"


def upstream_error(error: Any) -> StreamError:
    """The error object of an upstream's in-stream error event (both formats name the same two
    fields), without trusting its shape."""
    fields = error if isinstance(error, dict) else {}
    kind, message = fields.get("type"), fields.get("message")
    return StreamError(
        kind if isinstance(kind, str) and kind else "api_error",
        message if isinstance(message, str) and message else "The upstream reported an error.",
    )


StreamEvent = (
    StreamStart
    | TextDelta
    | ThinkingDelta
    | ThinkingSignature
    | ToolCallStart
    | ToolArgumentsDelta
    | Finish
    | UsageReport
    | StreamEnd
    | StreamError
)
