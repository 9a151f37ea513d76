"""Self-service reads for a key holder: their own balance and their own usage.

``GET /v1/dashboard/billing/credit_grants`` keeps the path dashboards know from OpenAI's legacy
API, with amounts as decimal strings; ``GET /v1/dashboard/usage`` lists the caller's records.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reapi.errors import GatewayError
from reapi.http.admin import usage_query
from reapi.http.render import JSON, as_gateway_error, openai_error
from reapi.http.requests import api_key
from reapi.http.state import Gateway, state_of
from reapi.money import format_usd
from reapi.services.billing import usage_json
from reapi.services.calls import new_request_id
from reapi.services.keys import Principal

log = logging.getLogger("reapi.http.account")

Handler = Callable[[Request, Gateway, Principal], Awaitable[dict[str, Any]]]


def _own(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate the key, answer its holder's own data; every error in OpenAI's envelope."""

    async def endpoint(request: Request) -> Response:
        gateway = state_of(request)
        request_id = new_request_id()
        try:
            principal = await gateway.keys.authenticate(api_key(request), workspace="chat")
            body = await handler(request, gateway, principal)
        except Exception as exc:
            error = as_gateway_error(exc)
            if error is None:
                log.exception("unexpected error on %s", request.url.path)
                error = GatewayError("The gateway failed to read the account.")
            return openai_error(error, request_id)
        return Response(orjson.dumps(body), headers={"x-request-id": request_id}, media_type=JSON)

    return endpoint


async def credit_grants(request: Request, gateway: Gateway, who: Principal) -> dict[str, Any]:
    state = await gateway.billing.balance_of(who.user_id)
    granted, used = await gateway.billing.totals_of(who.user_id)
    return {
        "object": "credit_summary",
        "total_granted": format_usd(granted),
        "total_used": format_usd(used),
        "balance": format_usd(state.balance),
        "held": format_usd(state.held),
        "total_available": format_usd(state.available),
    }


async def own_usage(request: Request, gateway: Gateway, who: Principal) -> dict[str, Any]:
    records = await gateway.billing.usage_of(who.user_id, usage_query(request))
    return {"object": "list", "data": [usage_json(r) for r in records]}


routes = [
    Route("/v1/dashboard/billing/credit_grants", _own(credit_grants), methods=["GET"]),
    Route("/v1/dashboard/usage", _own(own_usage), methods=["GET"]),
]
