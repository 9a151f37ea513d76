"""The admin API (``/admin/...``): what the CLI does, over HTTP, for dashboards and automation.

Authenticated with ``Authorization: Bearer <REAPI_ADMIN_TOKEN>``; without a configured token
the whole API answers 403. Amounts are decimal strings, as everywhere money is shown.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
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
from reapi.http import admin_bodies as bodies
from reapi.http import params
from reapi.http.render import JSON, as_gateway_error, openai_error
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
from reapi.services.keys import NAME_PATTERN, AccountError, KeyControls
from reapi.storage.tables import ApiKey, User

log = logging.getLogger("reapi.http.admin")

Handler = Callable[[Request, Gateway], Awaitable[Any]]

USER_NAME = re.compile(NAME_PATTERN)
# Key ids are "key_" and 16 hex digits; anything printable up to the column's size is looked up.
KEY_ID = re.compile(r"[!-~]{1,32}")
MAX_USAGE_PAGE = 100_000


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
        except Exception as exc:
            known = as_gateway_error(exc)
            if known is None:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                known = GatewayError("The admin API failed unexpectedly.")
            return openai_error(known, request_id)
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


async def _body(request: Request, model: type[bodies.Body]) -> bodies.Body:
    raw = await read_body(request, 1024 * 1024)
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    return bodies.parse(model, body)


def _user_name(request: Request) -> str:
    """The ``{name}`` of the path; a name no user can have names no user (and a NUL would be
    an error in PostgreSQL, not an answer)."""
    name: str = request.path_params["name"]
    if not USER_NAME.fullmatch(name):
        raise NotFound(f"no user named {name!r}")
    return name


def _units(amount: str, workspace: str, param: str) -> int:
    try:
        units = usd_to_units(amount) if workspace == "chat" else credits_to_units(amount)
    except MoneyFormatError as exc:
        raise InvalidRequest(str(exc), param=param) from None
    if units <= 0:
        raise InvalidRequest(f"{param} must be positive", param=param)
    return units


def _usd_limit(amount: str | None, param: str) -> int | None:
    return None if amount is None else _units(amount, "chat", param)


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
    body = await _body(request, bodies.CreateUser)
    return user_json(await gateway.keys.create_user(body.name, body.groups or ["default"]))


async def list_users(request: Request, gateway: Gateway) -> Any:
    return {"data": [user_json(u) for u in await gateway.keys.list_users()]}


async def create_key(request: Request, gateway: Gateway) -> Any:
    name = _user_name(request)
    body = await _body(request, bodies.CreateKey)
    controls = KeyControls(
        spend_limit=_usd_limit(body.spend_limit, "spend_limit"),
        daily_spend_limit=_usd_limit(body.daily_spend_limit, "daily_spend_limit"),
        expires_at=body.expires_at,
        allowed_models=list(body.models) if body.models is not None else None,
    )
    new = await gateway.keys.create_key(
        name,
        label=body.name,
        group=body.group,
        workspace=body.workspace or "chat",
        controls=controls,
    )
    return {**key_json(new.key), "secret": new.secret}


async def list_keys(request: Request, gateway: Gateway) -> Any:
    return {"data": [key_json(k) for k in await gateway.keys.list_keys(_user_name(request))]}


async def revoke_key(request: Request, gateway: Gateway) -> Any:
    key_id: str = request.path_params["key_id"]
    if not KEY_ID.fullmatch(key_id):
        raise NotFound(f"no key with id {key_id!r}")
    return key_json(await gateway.keys.revoke_key(key_id))


async def credit(request: Request, gateway: Gateway) -> Any:
    name = _user_name(request)
    body = await _body(request, bodies.Credit)
    workspace = body.workspace or "chat"
    units = _units(body.amount, workspace, "amount")
    balance = await gateway.billing.credit(name, units, note=body.note, workspace=workspace)
    return {"user": name, "workspace": workspace, "balance": _money(balance, workspace)}


async def balance(request: Request, gateway: Gateway) -> Any:
    workspace = params.choice(request.query_params, "workspace", ("chat", "tasks")) or "chat"
    state = await gateway.billing.balance(_user_name(request), workspace)
    return {
        "workspace": workspace,
        "balance": _money(state.balance, workspace),
        "held": _money(state.held, workspace),
        "available": _money(state.available, workspace),
    }


async def usage(request: Request, gateway: Gateway) -> Any:
    records = await gateway.billing.usage(_user_name(request), usage_query(request))
    return {"data": [usage_json(r) for r in records]}


async def verify(request: Request, gateway: Gateway) -> Any:
    problems = await gateway.billing.verify()
    return {"ok": not problems, "problems": problems}


def usage_query(request: Request) -> UsageQuery:
    """The usage filters of the query string, shared by the admin and self-service routes."""
    query = request.query_params
    return UsageQuery(
        since=params.timestamp(query, "since"),
        until=params.timestamp(query, "until"),
        model=params.text(query, "model"),
        key_id=params.text(query, "key", max_length=32),
        limit=params.integer(query, "limit", default=1000, low=1, high=MAX_USAGE_PAGE),
    )


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
