"""Self-service reads for a key holder: their own balance and their own usage.

``GET /v1/dashboard/billing/credit_grants`` keeps the path dashboards know from OpenAI's legacy
API, with amounts as decimal strings; ``GET /v1/dashboard/usage`` lists the caller's records.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reapi.errors import GatewayError
from reapi.http.admin import usage_query
from reapi.http.render import JSON, openai_error
from reapi.http.requests import api_key
from reapi.http.state import state_of
from reapi.money import format_usd
from reapi.services.billing import usage_json
from reapi.services.calls import new_request_id


async def credit_grants(request: Request) -> Response:
    gateway = state_of(request)
    request_id = new_request_id()
    try:
        principal = await gateway.keys.authenticate(api_key(request), workspace="chat")
        state = await gateway.billing.balance_of(principal.user_id)
        granted, used = await gateway.billing.totals_of(principal.user_id)
    except GatewayError as exc:
        return openai_error(exc, request_id)
    body = {
        "object": "credit_summary",
        "total_granted": format_usd(granted),
        "total_used": format_usd(used),
        "balance": format_usd(state.balance),
        "held": format_usd(state.held),
        "total_available": format_usd(state.available),
    }
    return Response(orjson.dumps(body), headers={"x-request-id": request_id}, media_type=JSON)


async def own_usage(request: Request) -> Response:
    gateway = state_of(request)
    request_id = new_request_id()
    try:
        principal = await gateway.keys.authenticate(api_key(request), workspace="chat")
        records = await gateway.billing.usage_of(principal.user_id, usage_query(request))
    except GatewayError as exc:
        return openai_error(exc, request_id)
    body = {"object": "list", "data": [usage_json(r) for r in records]}
    return Response(orjson.dumps(body), headers={"x-request-id": request_id}, media_type=JSON)


routes = [
    Route("/v1/dashboard/billing/credit_grants", credit_grants, methods=["GET"]),
    Route("/v1/dashboard/usage", own_usage, methods=["GET"]),
]
