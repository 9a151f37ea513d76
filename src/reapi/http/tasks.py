"""The task gateway's HTTP surface: ``/api/v1/*`` and the mirrored media under ``/media/tasks``.

Thin handlers: read the key and the body, call ``TaskService``, render. Every error under
``/api/v1`` (auth, validation, unknown route, wrong method, unexpected fault) is rendered in the
task envelope ``{"error": {"code", "message", "request_id"}}``; ``owns`` tells the app's
exception handlers which requests those are.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from reapi.errors import AuthenticationFailed, PermissionDenied, RequestTooLarge
from reapi.http import params
from reapi.http.requests import read_body
from reapi.protocols.tasks import (
    MediaKind,
    TaskError,
    TaskErrorCode,
    error_envelope,
    new_request_id,
    render_submitted,
    render_task,
)
from reapi.services.tasks.service import MAX_PAGE
from reapi.storage.media import MediaKeyError, check_key

if TYPE_CHECKING:
    from reapi.worker.runtime import TaskRuntime

log = logging.getLogger("reapi.http.tasks")

PREFIX = "/api/v1"
_JSON = "application/json"
# Mirrored outputs never change under their URL.
_MEDIA_CACHE = "public, max-age=86400, immutable"
_STATUSES = ("processing", "completed", "failed")
# Task ids are "task_" and 32 hex digits (the column holds 40); what cannot be one names no task.
_MAX_TASK_ID = 40
_PARAM_CODES = {
    "type": TaskErrorCode.WRONG_TYPE,
    "range": TaskErrorCode.OUT_OF_RANGE,
    "choice": TaskErrorCode.INVALID_CHOICE,
}


def owns(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def _runtime(request: Request) -> TaskRuntime:
    return cast("TaskRuntime", request.app.state.tasks)


def _json(
    body: Any, request_id: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status,
        {"x-request-id": request_id, **(headers or {})},
        media_type=_JSON,
    )


def error_response(error: TaskError, request_id: str, **headers: str) -> Response:
    if error.http_status == 401:
        headers.setdefault("www-authenticate", 'Bearer realm="reapi"')
    return _json(error_envelope(error, request_id), request_id, error.http_status, headers)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise TaskError(TaskErrorCode.MISSING_AUTHORIZATION)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TaskError(TaskErrorCode.MALFORMED_AUTHORIZATION)
    return token.strip()


def _origin(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# The key rule's refusals (services/keys.py) under the task API's documented codes; the rest
# (unknown key, a key of the chat workspace, an expired key) are 10003.
_KEY_REFUSALS = {
    "missing_api_key": TaskErrorCode.MISSING_AUTHORIZATION,
    "revoked_api_key": TaskErrorCode.REVOKED_API_KEY,
    "model_not_allowed": TaskErrorCode.MODEL_NOT_ALLOWED,
}


def _key_refusal(error: AuthenticationFailed | PermissionDenied) -> TaskError:
    code = _KEY_REFUSALS.get(error.code or "", TaskErrorCode.INVALID_API_KEY)
    return TaskError(code, error.message, param=error.param)


async def _answer(request: Request, work: Callable[[str], Awaitable[Response]]) -> Response:
    request_id = new_request_id()
    try:
        return await work(request_id)
    except TaskError as exc:
        if exc.detail is not None:
            log.warning(
                "%s %s (%s) answered %d: %s",
                request.method,
                request.url.path,
                request_id,
                exc.code,
                exc.detail,
            )
        return error_response(exc, request_id)
    except (AuthenticationFailed, PermissionDenied) as exc:
        return error_response(_key_refusal(exc), request_id)
    except params.ParamError as exc:
        error = TaskError(_PARAM_CODES[exc.kind], exc.message, param=exc.param)
        return error_response(error, request_id)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(TaskError(TaskErrorCode.INTERNAL_ERROR), request_id)


async def _read_json(request: Request, limit: int) -> object:
    try:
        raw = await read_body(request, limit)
    except RequestTooLarge:
        raise TaskError(
            TaskErrorCode.BODY_TOO_LARGE, f"Request body is larger than {limit} bytes"
        ) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise TaskError(TaskErrorCode.MALFORMED_BODY, "Request body is not valid JSON") from None


def _submit(kind: MediaKind) -> Callable[[Request], Awaitable[Response]]:
    async def submit(request: Request) -> Response:
        async def work(request_id: str) -> Response:
            runtime = _runtime(request)
            principal = await runtime.service.authenticate(_bearer(request))
            body = await _read_json(request, runtime.max_request_bytes)
            submitted = await runtime.service.submit(
                principal,
                kind,
                body,
                request_id=request_id,
                origin=_origin(request),
                idempotency_key=request.headers.get("idempotency-key"),
            )
            headers = {"idempotent-replayed": "true"} if submitted.replayed else {}
            return _json(render_submitted(submitted.task), request_id, headers=headers)

        return await _answer(request, work)

    return submit


async def get_task(request: Request) -> Response:
    async def work(request_id: str) -> Response:
        service = _runtime(request).service
        principal = await service.authenticate(_bearer(request))
        task_id = _task_id(request.path_params["task_id"], "id")
        task = await service.get(principal, task_id, _origin(request))
        return _json(render_task(task), request_id)

    return await _answer(request, work)


async def list_tasks(request: Request) -> Response:
    async def work(request_id: str) -> Response:
        service = _runtime(request).service
        principal = await service.authenticate(_bearer(request))
        query = request.query_params
        after = query.get("after") or None
        page, more = await service.list(
            principal,
            _origin(request),
            status=params.choice(query, "status", _STATUSES),
            limit=params.integer(query, "limit", default=20, low=1, high=MAX_PAGE),
            after=_task_id(after, "after") if after is not None else None,
        )
        body = {
            "object": "list",
            "data": [render_task(t) for t in page],
            "has_more": more,
            "next_after": page[-1].id if more and page else None,
        }
        return _json(body, request_id)

    return await _answer(request, work)


def _task_id(text: str, param: str) -> str:
    """A text that cannot be a task id names no task of the caller's: answered as such."""
    try:
        return params.check_text(text, param, max_length=_MAX_TASK_ID)
    except params.ParamError:
        message = "after names no task of yours" if param == "after" else None
        raise TaskError(TaskErrorCode.TASK_NOT_FOUND, message, param=param) from None


async def media(request: Request) -> Response:
    """Mirrored outputs: public to anyone holding the URL, like the upstream CDN links were."""
    try:
        key = check_key(f"tasks/{request.path_params['folder']}/{request.path_params['name']}")
    except MediaKeyError:
        raise HTTPException(404) from None
    stored = await _runtime(request).store.fetch(key)
    if stored is None:
        raise HTTPException(404)
    headers = {"cache-control": _MEDIA_CACHE}
    if stored.path is not None:
        return FileResponse(stored.path, media_type=stored.content_type, headers=headers)
    return Response(stored.data, media_type=stored.content_type, headers=headers)


def http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 (raised by routing) in the task envelope."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    code = {
        404: TaskErrorCode.UNKNOWN_ENDPOINT,
        405: TaskErrorCode.METHOD_NOT_ALLOWED,
    }.get(status, TaskErrorCode.INTERNAL_ERROR)
    message = code.default_message
    if code is TaskErrorCode.UNKNOWN_ENDPOINT:
        message = f"Unknown endpoint: {request.method} {request.url.path}"
    return error_response(TaskError(code, message), new_request_id(), **headers)


def routes() -> list[BaseRoute]:
    return [
        Route(f"{PREFIX}/images/generations", _submit("image"), methods=["POST"]),
        Route(f"{PREFIX}/videos/generations", _submit("video"), methods=["POST"]),
        Route(f"{PREFIX}/audio/generations", _submit("audio"), methods=["POST"]),
        Route(f"{PREFIX}/tasks", list_tasks, methods=["GET"]),
        Route(f"{PREFIX}/tasks/{{task_id}}", get_task, methods=["GET"]),
        Route("/media/tasks/{folder}/{name}", media, methods=["GET", "HEAD"]),
    ]
