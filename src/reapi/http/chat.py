"""``POST /v1/chat/completions``: the OpenAI-compatible chat endpoint."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from reapi.errors import GatewayError
from reapi.http.render import JSON, as_gateway_error, openai_error
from reapi.http.requests import api_key, read_body
from reapi.http.state import state_of
from reapi.http.streaming import EventStreamResponse
from reapi.protocols import openai_chat
from reapi.services.calls import CallRecord
from reapi.services.chat import JsonReply

log = logging.getLogger("reapi.http")


async def chat_completions(request: Request) -> Response | EventStreamResponse:
    gateway = state_of(request)
    call = CallRecord(endpoint="chat.completions")
    try:
        principal = await gateway.keys.authenticate(api_key(request))
        call.key_id, call.user_id, call.user = (
            principal.key_id,
            principal.user_id,
            principal.user_name,
        )
        body = openai_chat.parse_json_object(
            await read_body(request, gateway.settings.max_request_bytes)
        )
        reply = await gateway.chat.openai_chat(call, principal, body, request.headers)
    except Exception as exc:
        error = failed(call, exc)
        await gateway.billing.close(call)
        gateway.access.finish(call)
        return openai_error(error, call.request_id)
    headers = {"x-request-id": call.request_id}
    if isinstance(reply, JsonReply):
        gateway.access.finish(call)
        return Response(reply.body, reply.status, {**headers, **reply.headers}, media_type=JSON)

    async def finish() -> None:
        await gateway.billing.close(call)
        gateway.access.finish(call)

    return EventStreamResponse(reply.chunks, {**headers, **reply.headers}, finish)


def failed(call: CallRecord, exc: Exception) -> GatewayError:
    """Record why a call failed before its answer started, and what the client will see."""
    error = as_gateway_error(exc)
    if error is None:
        log.exception("unexpected error in %s (%s)", call.endpoint, call.request_id)
        error = GatewayError(
            "The gateway failed to process the request. Failed calls are not charged; "
            "it is safe to retry.",
        )
    call.status = error.status
    call.error_code = error.code
    call.outcome = (
        "upstream_error"
        if error.status >= 500 or (error.code and error.code.startswith("upstream"))
        else "rejected"
    )
    return error
