"""Submitting, reading and listing tasks: the decisions behind the /api/v1 handlers.

``submit`` does everything that can refuse a request before any money moves (auth controls,
schema, URL guard, channel, source probe, price), then, in ONE unit of work, checks the tasks
balance, posts the charge keyed by the task id and inserts the task row. So a task exists if
and only if it was charged, and an accepted submit is charged exactly once. Workers pick the
row up from the database; nothing here calls an upstream.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import aiohttp
import orjson
from sqlalchemy.exc import IntegrityError

from reapi.config import Channel
from reapi.money import format_credits
from reapi.protocols.tasks import (
    MediaKind,
    TaskError,
    TaskErrorCode,
    TaskFailure,
    TaskStatus,
    TaskView,
    new_task_id,
)
from reapi.providers.tasks.base import JobOutput
from reapi.providers.tasks.registry import TASK_ADAPTERS
from reapi.services.keys import KeyService, Principal
from reapi.services.tasks.catalog import (
    TaskModel,
    check_request_urls,
    check_source_duration,
    price,
    resolve_model,
    serves,
    validate_task_request,
)
from reapi.services.tasks.outputs import task_output
from reapi.services.tasks.probe import probe_source_seconds
from reapi.services.tasks.schema import iter_urls
from reapi.services.tasks.urls import UrlPolicy, check_url
from reapi.storage import ledger
from reapi.storage import tasks as tasks_sql
from reapi.storage.db import Database
from reapi.storage.task_tables import Task
from reapi.storage.types import utcnow

log = logging.getLogger("reapi.tasks")

WORKSPACE = "tasks"
IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_IDEMPOTENCY_KEY = 255
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class Submitted:
    task: TaskView
    # True when an Idempotency-Key matched an earlier task: nothing new was created or charged.
    replayed: bool = False


def media_url(origin: str, path: str) -> str:
    return f"{origin.rstrip('/')}/media/{path}"


def view(task: Task, origin: str) -> TaskView:
    """The client's picture of a task row; ``origin`` prefixes its media URLs."""
    output = None
    if task.status == "completed" and task.output is not None:
        output = task_output(
            cast(MediaKind, task.kind),
            [
                (
                    JobOutput(label=item.get("label"), content_type=item.get("content_type")),
                    media_url(origin, item["path"]),
                )
                for item in task.output
            ],
        )
    error = None
    if task.status == "failed" and task.error is not None:
        error = TaskFailure(
            TaskErrorCode(task.error["code"]), task.error["message"], task.error.get("request_id")
        )
    return TaskView(
        id=task.id,
        model=task.model,
        kind=cast(MediaKind, task.kind),
        status=cast(TaskStatus, task.status),
        created_at=int(task.created_at.timestamp()),
        output=output,
        error=error,
    )


def task_channels(channels: Sequence[Channel]) -> list[Channel]:
    """The configured channels the task gateway routes to (those with a task adapter type)."""
    return [c for c in channels if c.type in TASK_ADAPTERS]


class TaskService:
    def __init__(
        self,
        db: Database,
        keys: KeyService,
        catalog: Mapping[str, TaskModel],
        channels: Sequence[Channel],
        *,
        policy: UrlPolicy,
        probe_session: aiohttp.ClientSession,
        public_url: str | None = None,
        webhooks_enabled: bool = False,
        on_submitted: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self._keys = keys
        self.catalog = catalog
        self._channels = list(channels)
        self._policy = policy
        self._probe_session = probe_session
        self.public_url = public_url
        self._webhooks = webhooks_enabled
        self._on_submitted = on_submitted
        self._rng = rng or random.Random()

    async def authenticate(self, secret: str) -> Principal:
        """A principal of the tasks workspace; refusals are the key rule's own errors
        (``KeyService.authenticate``), which the HTTP layer renders as 1xxxx codes."""
        return await self._keys.authenticate(secret, workspace=WORKSPACE)

    def _origin(self, request_origin: str) -> str:
        return self.public_url or request_origin

    async def submit(
        self,
        principal: Principal,
        kind: MediaKind,
        body: object,
        *,
        request_id: str,
        origin: str,
        idempotency_key: str | None = None,
    ) -> Submitted:
        model = resolve_model(self.catalog, body, kind)
        assert isinstance(body, dict)
        principal.check(model=model.name)
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise TaskError(
                TaskErrorCode.BAD_LENGTH,
                f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters",
                param="Idempotency-Key",
            )
        fields = dict(body)
        callback_url = await self._callback_url(fields.pop("callback_url", None))
        params = validate_task_request(model, fields, policy=self._policy)
        channel = self._pick_channel(model)
        await check_request_urls(model, params, policy=self._policy)
        amount = price(model, params, source_seconds=await self._source_seconds(model, params))
        request_hash = _request_hash(kind, body)
        try:
            return await self._admit(
                principal,
                model,
                params,
                amount,
                channel,
                request_id=request_id,
                origin=self._origin(origin),
                callback_url=callback_url,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
            )
        except IntegrityError:
            if idempotency_key is None:
                raise
            # Two submits with one key raced; the other one's task is the answer.
            async with self._db.session() as session:
                existing = await tasks_sql.by_idempotency_key(
                    session, principal.user_id, idempotency_key
                )
            if existing is None:
                raise
            return self._replay(existing, request_hash, origin)

    async def _callback_url(self, value: object) -> str | None:
        if value is None:
            return None
        if not self._webhooks:
            raise TaskError(
                TaskErrorCode.UNKNOWN_PARAMETER,
                "callback_url: webhooks are not enabled on this gateway (no webhook secret)",
                param="callback_url",
            )
        checked = await check_url(value, self._policy, param="callback_url")
        return checked.url

    def _pick_channel(self, model: TaskModel) -> Channel:
        fitting = [c for c in self._channels if serves(model, c.type, c.models)]
        if not fitting:
            raise TaskError(
                TaskErrorCode.NO_CHANNEL_AVAILABLE,
                f"No upstream channel serves {model.name} right now",
            )
        best = min(c.priority for c in fitting)
        tier = [c for c in fitting if c.priority == best]
        return self._rng.choices(tier, weights=[c.weight for c in tier])[0]

    async def _source_seconds(self, model: TaskModel, params: Mapping[str, Any]) -> Decimal | None:
        if not model.needs_source_duration:
            return None
        sources = list(iter_urls(model.schema, params))
        if not sources:
            raise TaskError(TaskErrorCode.MISSING_PARAMETER, "Missing source media URL")
        param, url = sources[0]
        seconds = await probe_source_seconds(self._probe_session, url, param=param)
        check_source_duration(model, seconds, param)
        return seconds

    async def _admit(
        self,
        principal: Principal,
        model: TaskModel,
        params: dict[str, Any],
        amount: int,
        channel: Channel,
        *,
        request_id: str,
        origin: str,
        callback_url: str | None,
        idempotency_key: str | None,
        request_hash: str,
    ) -> Submitted:
        now = utcnow()
        task_id = new_task_id()
        async with self._db.session() as session:
            if idempotency_key is not None:
                existing = await tasks_sql.by_idempotency_key(
                    session, principal.user_id, idempotency_key
                )
                if existing is not None:
                    if existing.created_at > now - IDEMPOTENCY_WINDOW:
                        return self._replay(existing, request_hash, origin)
                    await tasks_sql.release_idempotency_key(session, existing.id)
            account = await ledger.ensure_account(session, principal.user_id, WORKSPACE)
            if amount > 0:
                if not await tasks_sql.lock_if_covered(session, account.id, amount):
                    raise TaskError(
                        TaskErrorCode.INSUFFICIENT_CREDITS,
                        f"Insufficient credits: {model.name} costs {format_credits(amount)} "
                        f"credits here and {format_credits(max(account.available, 0))} are "
                        "available",
                    )
                await ledger.post_entry(
                    session,
                    account.id,
                    -amount,
                    kind="charge",
                    request_id=task_id,
                    user_id=principal.user_id,
                    key_id=principal.key_id,
                    model=model.name,
                    channel=channel.name,
                    note=f"{model.kind} task",
                )
            task = Task(
                id=task_id,
                user_id=principal.user_id,
                account_id=account.id,
                key_id=principal.key_id,
                request_id=request_id,
                model=model.name,
                kind=model.kind,
                status="processing",
                phase="queued",
                params=params,
                price=amount,
                channel=channel.name,
                polls=0,
                next_attempt_at=now,
                deadline=now + timedelta(seconds=model.timeout_seconds),
                origin=origin[:255],
                callback_url=callback_url,
                callback_attempts=0,
                idempotency_key=idempotency_key,
                request_hash=request_hash if idempotency_key else None,
                created_at=now,
            )
            await tasks_sql.add_task(session, task)
        if self._on_submitted is not None:
            self._on_submitted()
        return Submitted(view(task, origin))

    def _replay(self, task: Task, request_hash: str, origin: str) -> Submitted:
        if task.request_hash != request_hash:
            raise TaskError(
                TaskErrorCode.CONFLICTING_PARAMETERS,
                "This Idempotency-Key was already used with a different request",
                param="Idempotency-Key",
            )
        return Submitted(view(task, self._origin(origin)), replayed=True)

    async def get(self, principal: Principal, task_id: str, origin: str) -> TaskView:
        """The caller's own task. Someone else's task is reported exactly like a missing one."""
        async with self._db.session() as session:
            task = await tasks_sql.get(session, task_id, principal.user_id)
        if task is None:
            raise TaskError(TaskErrorCode.TASK_NOT_FOUND, param="id")
        return view(task, self._origin(task.origin or origin))

    async def list(
        self,
        principal: Principal,
        origin: str,
        *,
        status: str | None = None,
        limit: int = 20,
        after: str | None = None,
    ) -> tuple[list[TaskView], bool]:
        """A page of the caller's tasks, newest first, and whether more follow."""
        if status is not None and status not in ("processing", "completed", "failed"):
            raise TaskError(
                TaskErrorCode.INVALID_CHOICE,
                "status must be processing, completed or failed",
                param="status",
            )
        if not 1 <= limit <= MAX_PAGE:
            raise TaskError(
                TaskErrorCode.OUT_OF_RANGE, f"limit must be 1 to {MAX_PAGE}", param="limit"
            )
        async with self._db.session() as session:
            cursor: tuple[datetime, str] | None = None
            if after is not None:
                anchor = await tasks_sql.get(session, after, principal.user_id)
                if anchor is None:
                    raise TaskError(
                        TaskErrorCode.TASK_NOT_FOUND, "after names no task of yours", param="after"
                    )
                cursor = (anchor.created_at, anchor.id)
            rows = await tasks_sql.list_of_user(
                session, principal.user_id, status=status, limit=limit + 1, after=cursor
            )
        page = [view(t, self._origin(t.origin or origin)) for t in rows[:limit]]
        return page, len(rows) > limit


def _request_hash(kind: str, body: Mapping[str, Any]) -> str:
    canonical = orjson.dumps({"kind": kind, "body": body}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()
