"""What a client of each surface may receive: its success shapes and its error envelope.

Used by the bad-input tests and the fuzzers: whatever a client sends, the answer must be one of
these, with an ``x-request-id``.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
import orjson

from reapi.protocols.anthropic_messages import ERROR_TYPES
from tests.schemas import assert_valid

Surface = Literal["openai", "anthropic", "tasks"]

CHAT_PATH = "/v1/chat/completions"
MESSAGES_PATH = "/v1/messages"
COUNT_PATH = "/v1/messages/count_tokens"
SURFACE_OF: dict[str, Surface] = {
    CHAT_PATH: "openai",
    MESSAGES_PATH: "anthropic",
    COUNT_PATH: "anthropic",
}


def assert_error(response: httpx.Response, surface: Surface, status: int | None = None) -> Any:
    """The response is an error in ``surface``'s envelope; returns the inner error object."""
    assert response.headers.get("x-request-id", "").startswith("req_"), response.headers
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    if surface == "openai":
        assert_valid("ErrorResponse", body)
        return body["error"]
    if surface == "anthropic":
        assert body["type"] == "error", body
        assert body["error"]["type"] in ERROR_TYPES, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        assert body["request_id"] == response.headers["x-request-id"]
        return body["error"]
    error = body["error"]
    assert set(error) == {"code", "message", "request_id"}, body
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def assert_answer(response: httpx.Response, path: str) -> None:
    """Any answer to a chat call: a documented success shape or a 4xx in the route's envelope.
    Never a 5xx: the fuzzed upstreams behave, so any 5xx is the gateway's own failure."""
    surface = SURFACE_OF[path]
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error(response, surface)
        return
    assert response.status_code == 200, response.text
    assert response.headers.get("x-request-id", "").startswith("req_")
    if response.headers["content-type"].startswith("text/event-stream"):
        check_stream(response.content, surface)
    elif path == COUNT_PATH:
        assert isinstance(response.json()["input_tokens"], int)
    elif surface == "openai":
        assert_valid("CreateChatCompletionResponse", response.json())
    else:
        body = response.json()
        assert body["type"] == "message" and body["role"] == "assistant", body
        assert isinstance(body["content"], list)


def check_stream(raw: bytes, surface: Surface) -> None:
    """A complete stream of ``surface``'s events (the fakes never break one off)."""
    data = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]
    if surface == "openai":
        assert data[-1] == b"[DONE]", raw[-300:]
        for chunk in data[:-1]:
            assert_valid("CreateChatCompletionStreamResponse", orjson.loads(chunk))
        return
    events = [orjson.loads(chunk) for chunk in data]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop", raw
