"""Shared checks for protocol tests: the official OpenAI schemas, the Anthropic SDK's types, and
SSE bytes decoded the way a client would (fed one byte at a time)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import anthropic.types as at
import jsonschema
import orjson
import yaml
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from anthropic.types.shared import ErrorResponse
from pydantic import TypeAdapter
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from reapi.protocols.sse import SSEDecoder, SSEEvent

# shared/ sits beside the project root (see shared/README.md).
SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "openai-openapi.yaml"
SPEC_URI = "urn:openai-openapi"


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` (still used in this 3.1 document) as JSON Schema."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    if node.pop("nullable", False) is True:
        node = {"anyOf": [node, {"type": "null"}]}
    return node


@cache
def _registry() -> Registry:
    with SPEC.open() as f:
        # safe_load in C: the pure-Python loader takes seconds on this 87,000-line spec.
        spec = yaml.load(f, Loader=yaml.CSafeLoader)
    resource = Resource.from_contents(_nullable(spec), default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


def validate_openai(schema_name: str, instance: Any) -> None:
    """Raise if ``instance`` does not match components/schemas/``schema_name``."""
    schema = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
    validator = jsonschema.Draft202012Validator(schema, registry=_registry())
    validator.validate(instance)


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
