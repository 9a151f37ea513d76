"""Shared checks for protocol tests: the official OpenAI schemas (through tests/schemas.py), the
Anthropic SDK's own types, and SSE bytes decoded the way a client would (one byte at a time)."""

from __future__ import annotations

from typing import Any

import anthropic.types as at
import orjson
import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from anthropic.types.shared import ErrorResponse
from pydantic import TypeAdapter

from reapi.protocols.sse import SSEDecoder, SSEEvent
from tests.schemas import use_spec


@pytest.fixture(scope="session", autouse=True)
def _openai_schemas(openai_spec: dict[str, Any]) -> None:
    use_spec(openai_spec)


_STREAM_EVENT = TypeAdapter(at.RawMessageStreamEvent)
_REQUEST = TypeAdapter(MessageCreateParamsNonStreaming)


def validate_anthropic_request(body: dict[str, Any]) -> None:
    """Check a request body against the SDK's params types. Pydantic validates ``Iterable``
    fields lazily, so the result is walked to force every nested item through validation."""
    _consume(_REQUEST.validate_python({k: v for k, v in body.items() if k != "stream"}))


def _consume(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _consume(v) for k, v in value.items()}
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return value
    return [_consume(v) for v in value]


def validate_anthropic_event(event: SSEEvent) -> dict[str, Any]:
    """Parse one Anthropic event with the SDK's own types; the SSE name must match its type."""
    data = orjson.loads(event.data)
    assert event.event == data["type"]
    if data["type"] == "ping":
        assert data == {"type": "ping"}
    elif data["type"] == "error":
        ErrorResponse.model_validate(data)
    else:
        _STREAM_EVENT.validate_python(data)
    return data


def decode_bytewise(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for byte in b"".join(chunks):
        events += decoder.feed(bytes([byte]))
    return events + decoder.close()


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    prefix = b"" if event is None else b"event: " + event.encode() + b"\r\n"
    return prefix + b"data: " + payload + b"\r\n\r\n"
