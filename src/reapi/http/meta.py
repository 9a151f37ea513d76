"""Endpoints about the gateway itself: models, health, metrics, and unknown routes."""

from __future__ import annotations

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from reapi.errors import GatewayError, NotFound
from reapi.http.render import JSON, as_gateway_error, openai_error, renderer_for
from reapi.http.requests import api_key
from reapi.http.state import state_of
from reapi.services.calls import new_request_id

# Fixed "created" stamp for catalog entries: the OpenAI list shape requires one.
_CATALOG_CREATED = 1_767_225_600


async def list_models(request: Request) -> Response:
    gateway = state_of(request)
    request_id = new_request_id()
    try:
        principal = await gateway.keys.authenticate(api_key(request), workspace="chat")
    except GatewayError as exc:
        return openai_error(exc, request_id)
    data = [
        {"id": m.name, "object": "model", "created": _CATALOG_CREATED, "owned_by": m.owned_by}
        for m in gateway.chat.models_for(principal)
    ]
    body = orjson.dumps({"object": "list", "data": data})
    return Response(body, headers={"x-request-id": request_id}, media_type=JSON)


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type=JSON)


async def readyz(request: Request) -> Response:
    """200 when every store a call needs answers, else 503 naming the ones that did not."""
    checks = await state_of(request).readiness.check()
    ready = all(state == "ok" for state in checks.values())
    body = orjson.dumps({"status": "ready" if ready else "unready", "checks": checks})
    return Response(body, status_code=200 if ready else 503, media_type=JSON)


async def metrics(request: Request) -> Response:
    registry = state_of(request).metrics.exposition
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def not_found(request: Request, exc: Exception) -> Response:
    error = as_gateway_error(exc) or NotFound(
        f"Unknown endpoint: {request.method} {request.url.path}", code="unknown_url"
    )
    return renderer_for(request.url.path)(error, new_request_id())
