"""The admin API (``/admin/...``): what the CLI does, over HTTP, for dashboards and automation.

Authenticated with ``Authorization: Bearer <REAPI_ADMIN_TOKEN>``; without a configured token
the whole API answers 403. Amounts are decimal strings, as everywhere money is shown.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reapi.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from reapi.http.render import JSON, openai_error
from reapi.http.requests import read_body
from reapi.http.state import Gateway, state_of
from reapi.money import (
    MoneyFormatError,
    credits_to_units,
    format_credits,
    format_usd,
    usd_to_units,
)
from reapi.services.billing import UsageQuery, usage_json
from reapi.services.calls import new_request_id
from reapi.services.keys import AccountError, KeyControls
from reapi.storage.tables import ApiKey, User

Handler = Callable[[Request, Gateway], Awaitable[Any]]


def _admin(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        gateway = state_of(request)
        request_id = new_request_id()
        try:
            _authorize(request, gateway)
            result = await handler(request, gateway)
        except AccountError as exc:
            message = str(exc)
            error: GatewayError = (
                NotFound(message) if message.startswith("no ") else InvalidRequest(message)
            )
            return openai_error(error, request_id)
        except MoneyFormatError as exc:
            return openai_error(InvalidRequest(str(exc), param="amount"), request_id)
        except GatewayError as exc:
            return openai_error(exc, request_id)
        status = 201 if request.method == "POST" else 200
        return Response(orjson.dumps(result), status, {"x-request-id": request_id}, media_type=JSON)

    return endpoint


def _authorize(request: Request, gateway: Gateway) -> None:
    token = gateway.settings.admin_token
    if not token:
        raise PermissionDenied("The admin API is disabled: set REAPI_ADMIN_TOKEN to enable it.")
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise AuthenticationFailed("A valid admin token is required.", code="invalid_admin_token")


async def _json(request: Request, gateway: Gateway) -> dict[str, Any]:
    raw = await read_body(request, 1024 * 1024)
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _workspace(value: Any) -> str:
    if value not in (None, "chat", "tasks"):
        raise InvalidRequest("workspace must be chat or tasks", param="workspace")
    return str(value or "chat")


def _money(units: int, workspace: str) -> str:
    return format_usd(units) if workspace == "chat" else format_credits(units)


def user_json(user: User) -> dict[str, Any]:
    return {"name": user.name, "groups": user.groups, "created_at": user.created_at.isoformat()}


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "hint": key.hint,
        "name": key.name,
        "workspace": key.workspace,
        "group": key.default_group,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "models": key.allowed_models,
        "spend_limit": format_usd(key.spend_limit) if key.spend_limit is not None else None,
        "daily_spend_limit": (
            format_usd(key.daily_spend_limit) if key.daily_spend_limit is not None else None
        ),
        "spent": format_usd(key.spent),
    }


async def create_user(request: Request, gateway: Gateway) -> Any:
    body = await _json(request, gateway)
    groups = body.get("groups") or ["default"]
    if not isinstance(body.get("name"), str) or not isinstance(groups, list):
        raise InvalidRequest("name (string) and groups (array) are required", param="name")
    return user_json(await gateway.keys.create_user(body["name"], groups))


async def list_users(request: Request, gateway: Gateway) -> Any:
    return {"data": [user_json(u) for u in await gateway.keys.list_users()]}


async def create_key(request: Request, gateway: Gateway) -> Any:
    body = await _json(request, gateway)
    expires = body.get("expires_at")
    controls = KeyControls(
        spend_limit=usd_to_units(body["spend_limit"]) if body.get("spend_limit") else None,
        daily_spend_limit=(
            usd_to_units(body["daily_spend_limit"]) if body.get("daily_spend_limit") else None
        ),
        expires_at=_datetime(expires, "expires_at") if expires else None,
        allowed_models=body.get("models"),
    )
    new = await gateway.keys.create_key(
        request.path_params["name"],
        label=str(body.get("name") or ""),
        group=body.get("group"),
        workspace=_workspace(body.get("workspace")),
        controls=controls,
    )
    return {**key_json(new.key), "secret": new.secret}


async def list_keys(request: Request, gateway: Gateway) -> Any:
    return {
        "data": [key_json(k) for k in await gateway.keys.list_keys(request.path_params["name"])]
    }


async def revoke_key(request: Request, gateway: Gateway) -> Any:
    return key_json(await gateway.keys.revoke_key(request.path_params["key_id"]))


async def credit(request: Request, gateway: Gateway) -> Any:
    body = await _json(request, gateway)
    workspace = _workspace(body.get("workspace"))
    amount = body.get("amount")
    if not isinstance(amount, str):
        raise InvalidRequest('amount must be a decimal string, e.g. "10.00"', param="amount")
    units = usd_to_units(amount) if workspace == "chat" else credits_to_units(amount)
    if units <= 0:
        raise InvalidRequest("amount must be positive", param="amount")
    name = request.path_params["name"]
    balance = await gateway.billing.credit(
        name, units, note=str(body.get("note") or ""), workspace=workspace
    )
    return {"user": name, "workspace": workspace, "balance": _money(balance, workspace)}


async def balance(request: Request, gateway: Gateway) -> Any:
    workspace = _workspace(request.query_params.get("workspace"))
    state = await gateway.billing.balance(request.path_params["name"], workspace)
    return {
        "workspace": workspace,
        "balance": _money(state.balance, workspace),
        "held": _money(state.held, workspace),
        "available": _money(state.available, workspace),
    }


async def usage(request: Request, gateway: Gateway) -> Any:
    records = await gateway.billing.usage(request.path_params["name"], usage_query(request))
    return {"data": [usage_json(r) for r in records]}


async def verify(request: Request, gateway: Gateway) -> Any:
    problems = await gateway.billing.verify()
    return {"ok": not problems, "problems": problems}


def usage_query(request: Request) -> UsageQuery:
    params = request.query_params
    limit = params.get("limit", "1000")
    if not limit.isdigit() or not 1 <= int(limit) <= 100_000:
        raise InvalidRequest("limit must be an integer from 1 to 100000", param="limit")
    return UsageQuery(
        since=_datetime(params["since"], "since") if "since" in params else None,
        until=_datetime(params["until"], "until") if "until" in params else None,
        model=params.get("model"),
        key_id=params.get("key"),
        limit=int(limit),
    )


def _datetime(text: Any, param: str) -> datetime:
    from datetime import UTC

    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidRequest(f"{param} must be an ISO date or date-time", param=param) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


routes = [
    Route("/admin/users", _admin(create_user), methods=["POST"]),
    Route("/admin/users", _admin(list_users), methods=["GET"]),
    Route("/admin/users/{name}/keys", _admin(create_key), methods=["POST"]),
    Route("/admin/users/{name}/keys", _admin(list_keys), methods=["GET"]),
    Route("/admin/keys/{key_id}", _admin(revoke_key), methods=["DELETE"]),
    Route("/admin/users/{name}/credit", _admin(credit), methods=["POST"]),
    Route("/admin/users/{name}/balance", _admin(balance), methods=["GET"]),
    Route("/admin/users/{name}/usage", _admin(usage), methods=["GET"]),
    Route("/admin/ledger/verify", _admin(verify), methods=["GET"]),
]
