"""The chat endpoints: ``POST /v1/chat/completions`` (OpenAI), ``POST /v1/messages``
(Anthropic) and ``POST /v1/responses`` (OpenAI Responses). Same flow, each in its own wire
format and error envelope."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from reapi.errors import GatewayError, MethodNotAllowed, UpstreamError
from reapi.http.render import JSON, RenderError, anthropic_error, as_gateway_error, openai_error
from reapi.http.requests import api_key, read_body
from reapi.http.state import Gateway, state_of
from reapi.http.streaming import EventStreamResponse
from reapi.protocols.limits import parse_json_object
from reapi.services.calls import CallRecord, new_request_id
from reapi.services.chat import ChatReply, JsonReply
from reapi.services.keys import Principal

log = logging.getLogger("reapi.http")

Serve = Callable[[Gateway, CallRecord, Principal, dict[str, Any], Headers], Awaitable[ChatReply]]


def _endpoint(
    name: str, serve: Serve, render_error: RenderError
) -> Callable[[Request], Awaitable[Any]]:
    async def endpoint(request: Request) -> Response | EventStreamResponse:
        gateway = state_of(request)
        call = CallRecord(endpoint=name)
        gateway.access.start(call)
        streaming = False
        try:
            principal = await gateway.keys.authenticate(api_key(request), workspace="chat")
            call.key_id, call.user_id, call.user = (
                principal.key_id,
                principal.user_id,
                principal.user_name,
            )
            body = parse_json_object(await read_body(request, gateway.settings.max_request_bytes))
            reply = await serve(gateway, call, principal, body, request.headers)
            headers = {"x-request-id": call.request_id, **reply.headers}
            if isinstance(reply, JsonReply):
                return Response(reply.body, reply.status, headers, media_type=JSON)
            streaming = True
            return EventStreamResponse(reply.chunks, headers, lambda: _close(gateway, call))
        except Exception as exc:
            return render_error(failed(call, exc), call.request_id)
        finally:
            # A stream is closed by its response once the last byte is out; every other exit,
            # cancellation included, ends the call here.
            if not streaming:
                await _close(gateway, call)

    return endpoint


async def _close(gateway: Gateway, call: CallRecord) -> None:
    """Settle and record the call, then count it out, whatever fails on the way: the client's
    answer is already decided, and the in-flight gauge must come down on every path."""
    try:
        await gateway.billing.close(call)
    except Exception:
        log.exception("could not settle or record %s (%s)", call.endpoint, call.request_id)
    finally:
        gateway.access.finish(call)


def failed(call: CallRecord, exc: Exception) -> GatewayError:
    """Record why a call failed before its answer started, and what the client will see."""
    error = as_gateway_error(exc)
    if isinstance(exc, ClientDisconnect):
        # Nobody is left to answer; nothing reached an upstream. Not a gateway fault.
        call.status, call.outcome, call.error_code = 499, "client_gone", "client_closed_request"
        return GatewayError("The client closed the request.", code="client_closed_request")
    if error is None:
        # A bug, not an upstream's failure: label it so, and keep the traceback.
        log.exception("unexpected error in %s (%s)", call.endpoint, call.request_id)
        error = GatewayError(
            "The gateway failed to process the request. Failed calls are not charged; "
            "it is safe to retry.",
        )
        call.status, call.outcome, call.error_code = error.status, "gateway_error", error.code
        return error
    call.status = error.status
    call.error_code = error.code
    if isinstance(error, UpstreamError):
        call.outcome = "upstream_error"
    elif error.status >= 500:
        call.outcome = "gateway_error"
    else:
        call.outcome = "rejected"
    return error


chat_completions = _endpoint(
    "chat.completions",
    lambda g, call, who, body, headers: g.chat.serve("openai", call, who, body, headers),
    openai_error,
)
messages = _endpoint(
    "messages",
    lambda g, call, who, body, headers: g.chat.serve("anthropic", call, who, body, headers),
    anthropic_error,
)
responses = _endpoint(
    "responses",
    lambda g, call, who, body, headers: g.chat.serve("responses", call, who, body, headers),
    openai_error,
)

# The Responses API's WebSocket transport is not offered. Codex tries it first and falls back
# to HTTP at once on a 426 (other statuses cost it retries, and a 400 makes it exit).
_NO_WEBSOCKET = GatewayError(
    "This gateway serves the Responses API over HTTP only: POST /v1/responses.",
    code="websocket_not_supported",
)
_NO_WEBSOCKET.status = 426
_NO_WEBSOCKET.openai_type = "invalid_request_error"


async def responses_get(request: Request) -> Response:
    """``GET /v1/responses``: the server runs without WebSocket support, so a WebSocket
    handshake arrives here as a plain GET with ``Upgrade: websocket``, and is refused with 426."""
    if request.headers.get("upgrade", "").lower() == "websocket":
        return openai_error(_NO_WEBSOCKET, new_request_id())
    error = MethodNotAllowed(
        "GET is not allowed on /v1/responses; it takes POST.", headers={"Allow": "POST"}
    )
    return openai_error(error, new_request_id())


async def count_tokens(request: Request) -> Response:
    gateway = state_of(request)
    request_id = new_request_id()
    try:
        principal = await gateway.keys.authenticate(api_key(request), workspace="chat")
        body = parse_json_object(await read_body(request, gateway.settings.max_request_bytes))
        counted = await gateway.chat.count_tokens(principal, body, request.headers)
    except Exception as exc:
        error = as_gateway_error(exc)
        if error is None:
            log.exception("unexpected error counting tokens (%s)", request_id)
            error = GatewayError("The gateway failed to count the tokens.")
        return anthropic_error(error, request_id)
    return Response(orjson.dumps(counted), headers={"x-request-id": request_id}, media_type=JSON)


async def warm_up(request: Request) -> Response:
    """``HEAD /api/hello``: a connection warm-up some clients (Claude Code) send. ``HEAD /``,
    the other one, is answered the same way by ``reapi.web``."""
    return Response(b"", 200)
