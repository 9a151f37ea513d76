"""Errors and replies rendered in the envelope of the surface the client called."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from starlette.responses import Response

from reapi.errors import GatewayError
from reapi.protocols import errors as protocol_errors

JSON = "application/json"
_ANTHROPIC_PATH = "/v1/messages"

RenderError = Callable[[GatewayError, str], Response]


def as_gateway_error(exc: Exception) -> GatewayError | None:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, protocol_errors.InvalidRequest):
        from reapi.errors import InvalidRequest

        return InvalidRequest(exc.message, param=exc.param)
    return None


def renderer_for(path: str) -> RenderError:
    """The error envelope a client of ``path`` expects: Anthropic's under ``/v1/messages``,
    OpenAI's on every other chat-side route (the task gateway renders its own)."""
    if path == _ANTHROPIC_PATH or path.startswith(_ANTHROPIC_PATH + "/"):
        return anthropic_error
    return openai_error


def openai_error(error: GatewayError, request_id: str) -> Response:
    body = orjson.dumps(
        {
            "error": {
                "message": error.message,
                "type": error.openai_type,
                "param": error.param,
                "code": error.code,
            }
        }
    )
    return Response(body, error.status, _headers(error, request_id), media_type=JSON)


def anthropic_error(error: GatewayError, request_id: str) -> Response:
    body = orjson.dumps(
        {
            "type": "error",
            "error": {"type": error.anthropic_type, "message": error.message},
            "request_id": request_id,
        }
    )
    return Response(body, error.status, _headers(error, request_id), media_type=JSON)


def _headers(error: GatewayError, request_id: str) -> dict[str, str]:
    headers = {"x-request-id": request_id, **error.headers}
    if error.status == 401:
        headers.setdefault("www-authenticate", 'Bearer realm="reapi"')
    return headers
