"""The task gateway's wire shapes: the numeric error code table and its envelope, and the task
object that submit and poll answer with.

Pure code: no I/O and no clocks. Callers pass the timestamps and ids in; ``new_task_id`` and
``new_request_id`` only draw random bits. The HTTP layer renders ``TaskError`` with
``error_envelope``; nothing here knows about Starlette or storage.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

TaskStatus = Literal["processing", "completed", "failed"]
MediaKind = Literal["image", "video", "audio"]
MEDIA_KINDS: tuple[MediaKind, ...] = ("image", "video", "audio")

# The submit path of each media kind, relative to the task API root (/api/v1).
SUBMIT_PATHS: Mapping[MediaKind, str] = {
    "image": "/images/generations",
    "video": "/videos/generations",
    "audio": "/audio/generations",
}
OUTPUT_FIELDS: Mapping[MediaKind, str] = {
    "image": "image_urls",
    "video": "video_urls",
    "audio": "audio_urls",
}


class TaskErrorCode(IntEnum):
    """Stable five-digit codes; the first digit is the category (1 auth, 2 validation, 3 billing,
    4 rate limit, 5 upstream/internal). Codes are never renumbered or reused: clients match them.
    """

    MISSING_AUTHORIZATION = 10001
    MALFORMED_AUTHORIZATION = 10002
    INVALID_API_KEY = 10003
    REVOKED_API_KEY = 10004
    SIGN_IN_REQUIRED = 10005
    MODEL_NOT_ALLOWED = 10006

    MALFORMED_BODY = 20001
    MISSING_PARAMETER = 20002
    UNKNOWN_MODEL = 20003
    WRONG_ENDPOINT = 20004
    WRONG_TYPE = 20005
    OUT_OF_RANGE = 20006
    INVALID_CHOICE = 20007
    TOO_MANY_ITEMS = 20008
    TOO_FEW_ITEMS = 20009
    BAD_LENGTH = 20010
    UNKNOWN_PARAMETER = 20011
    CONFLICTING_PARAMETERS = 20012
    INVALID_URL = 20013
    DATA_URL_REJECTED = 20014
    PRIVATE_ADDRESS_REJECTED = 20015
    UNRESOLVABLE_HOST = 20016
    TASK_NOT_FOUND = 20017
    SOURCE_UNREADABLE = 20018
    UNKNOWN_ENDPOINT = 20019
    METHOD_NOT_ALLOWED = 20020
    BODY_TOO_LARGE = 20021

    INSUFFICIENT_CREDITS = 30001

    RATE_LIMITED = 40001
    TOO_MANY_ACTIVE_TASKS = 40002

    INTERNAL_ERROR = 50001
    UPSTREAM_FAILED = 50002
    NO_CHANNEL_AVAILABLE = 50003
    UPSTREAM_TIMEOUT = 50004
    OUTPUT_UNAVAILABLE = 50005
    UPSTREAM_REJECTED = 50006

    @property
    def http_status(self) -> int:
        return _TABLE[self][0]

    @property
    def default_message(self) -> str:
        return _TABLE[self][1]

    @property
    def category(self) -> str:
        return _CATEGORIES[self.value // 10000]


_CATEGORIES = {1: "auth", 2: "validation", 3: "billing", 4: "rate_limit", 5: "upstream"}

_C = TaskErrorCode
_TABLE: Mapping[TaskErrorCode, tuple[int, str]] = {
    _C.MISSING_AUTHORIZATION: (401, "Missing Authorization header"),
    _C.MALFORMED_AUTHORIZATION: (401, "Authorization header must be 'Bearer <key>'"),
    _C.INVALID_API_KEY: (401, "Invalid API key"),
    _C.REVOKED_API_KEY: (401, "API key has been revoked"),
    _C.SIGN_IN_REQUIRED: (401, "Sign-in required"),
    _C.MODEL_NOT_ALLOWED: (403, "This API key may not use this model"),
    _C.MALFORMED_BODY: (400, "Request body must be a JSON object"),
    _C.MISSING_PARAMETER: (400, "Missing required parameter"),
    _C.UNKNOWN_MODEL: (400, "Unknown model"),
    _C.WRONG_ENDPOINT: (400, "This model is not served on this endpoint"),
    _C.WRONG_TYPE: (400, "Parameter has the wrong type"),
    _C.OUT_OF_RANGE: (400, "Parameter is out of range"),
    _C.INVALID_CHOICE: (400, "Parameter is not one of the allowed values"),
    _C.TOO_MANY_ITEMS: (400, "Parameter has too many items"),
    _C.TOO_FEW_ITEMS: (400, "Parameter has too few items"),
    _C.BAD_LENGTH: (400, "Parameter text is too long or too short"),
    _C.UNKNOWN_PARAMETER: (400, "Unknown parameter for this model"),
    _C.CONFLICTING_PARAMETERS: (400, "Parameters cannot be combined"),
    _C.INVALID_URL: (400, "Media inputs must be public http(s) URLs"),
    _C.DATA_URL_REJECTED: (400, "data: URLs are not accepted; pass a public http(s) URL"),
    _C.PRIVATE_ADDRESS_REJECTED: (400, "URL points to a private or reserved address"),
    _C.UNRESOLVABLE_HOST: (400, "URL host does not resolve"),
    _C.TASK_NOT_FOUND: (404, "Task not found"),
    _C.SOURCE_UNREADABLE: (400, "Source media could not be fetched or its length read"),
    _C.UNKNOWN_ENDPOINT: (404, "Unknown endpoint"),
    _C.METHOD_NOT_ALLOWED: (405, "Method not allowed on this endpoint"),
    _C.BODY_TOO_LARGE: (413, "Request body is too large"),
    _C.INSUFFICIENT_CREDITS: (402, "Insufficient credits"),
    _C.RATE_LIMITED: (429, "Rate limit exceeded; retry later"),
    _C.TOO_MANY_ACTIVE_TASKS: (429, "Too many tasks in progress; wait for some to finish"),
    _C.INTERNAL_ERROR: (500, "Internal error"),
    _C.UPSTREAM_FAILED: (502, "Upstream provider failed"),
    _C.NO_CHANNEL_AVAILABLE: (503, "No upstream is available for this model right now"),
    _C.UPSTREAM_TIMEOUT: (504, "Upstream provider timed out"),
    _C.OUTPUT_UNAVAILABLE: (502, "Upstream output could not be retrieved"),
    _C.UPSTREAM_REJECTED: (502, "Upstream provider rejected the request"),
}
assert set(_TABLE) == set(TaskErrorCode), "every code needs a status and a message"


class TaskError(Exception):
    """A task-gateway failure with its stable code; ``param`` names the offending field (dotted
    path such as ``image_urls.3``) when one is to blame.

    ``message`` is what the client sees, so it never carries exception text, upstream hosts or
    ports; ``detail`` is the operator's part (the URL, the exception, the upstream's own
    words), written to the log next to the request id and never rendered."""

    def __init__(
        self,
        code: TaskErrorCode,
        message: str | None = None,
        *,
        param: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.code = code
        self.message = message or code.default_message
        self.param = param
        self.detail = detail
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return self.code.http_status


def new_request_id() -> str:
    return f"req_{uuid.uuid4()}"


def new_task_id() -> str:
    return f"task_{uuid.uuid4().hex}"


def error_object(code: TaskErrorCode, message: str, request_id: str | None) -> dict[str, Any]:
    """The ``{code, message, request_id}`` object, used both as the HTTP error body's ``error``
    and as a failed task's ``error``. ``request_id`` is left out when none was assigned."""
    body: dict[str, Any] = {"code": int(code), "message": message}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error_envelope(error: TaskError, request_id: str | None) -> dict[str, Any]:
    return {"error": error_object(error.code, error.message, request_id)}


@dataclass(frozen=True, slots=True)
class Track:
    """A labelled output (e.g. a separated stem); ``type`` is the media type, ``label`` what the
    track holds (``vocals``, ``no_multistem``, ``converted_mix``)."""

    type: str
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class TaskOutput:
    urls: Sequence[str] = ()
    tracks: Sequence[Track] = ()
    last_frame_url: str | None = None

    def to_wire(self, kind: MediaKind) -> dict[str, Any]:
        body: dict[str, Any] = {OUTPUT_FIELDS[kind]: list(self.urls)}
        if self.tracks:
            body["tracks"] = [{"type": t.type, "label": t.label, "url": t.url} for t in self.tracks]
        if self.last_frame_url is not None:
            body["last_frame_url"] = self.last_frame_url
        return body


@dataclass(frozen=True, slots=True)
class TaskFailure:
    code: TaskErrorCode
    message: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class TaskView:
    """What a poll shows of one task. ``output`` only when completed, ``error`` only when failed."""

    id: str
    model: str
    kind: MediaKind
    status: TaskStatus
    created_at: int
    output: TaskOutput | None = None
    error: TaskFailure | None = field(default=None)


def render_submitted(task: TaskView) -> dict[str, Any]:
    """The submit answer: the task as it stands when accepted (always ``processing``)."""
    return {
        "id": task.id,
        "model": task.model,
        "status": task.status,
        "created_at": task.created_at,
    }


def render_task(task: TaskView) -> dict[str, Any]:
    """The poll answer. ``output`` and ``error`` are always present, null when not applicable,
    so clients can read them without a key check."""
    output = task.output.to_wire(task.kind) if task.status == "completed" and task.output else None
    error = None
    if task.status == "failed":
        failure = task.error or TaskFailure(
            TaskErrorCode.UPSTREAM_FAILED, TaskErrorCode.UPSTREAM_FAILED.default_message
        )
        error = error_object(failure.code, failure.message, failure.request_id)
    return {
        "id": task.id,
        "model": task.model,
        "status": task.status,
        "created_at": task.created_at,
        "output": output,
        "error": error,
    }
