"""The task worker: claims due tasks from the database and moves each one step forward.

A step is one of: submit to the upstream, poll the upstream job, or mirror the outputs and mark
the task completed. Each step runs under a lease the worker keeps renewing; between steps the
lease is released and the task rescheduled, so any worker may take the next step and a crashed
worker's task is picked up once its lease runs out.

The rules that make this safe:

* ``phase`` is set to ``submitting`` and committed *before* the create call, and the upstream job
  is committed as soon as the call returns. A task found in ``submitting`` was interrupted
  mid-call: the upstream may hold a job we cannot see, so it is failed and refunded, never
  submitted again. A task with a recorded job is only ever polled.
* ``completed`` is written only after every output is in the media store.
* ``failed`` and its refund are one transaction, guarded by ``status = 'processing'``: the
  refund is visible the moment ``failed`` is, and it happens exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from reapi.config import Channel, TaskSettings
from reapi.protocols.tasks import TaskError, TaskErrorCode, new_request_id
from reapi.providers.tasks.base import JobOutput, JobState, SubmitError, TaskAdapter, UpstreamJob
from reapi.providers.tasks.registry import TASK_ADAPTERS
from reapi.services.tasks.catalog import TaskModel
from reapi.services.tasks.outputs import (
    ChannelOrigin,
    download_output,
    job_failure,
    submit_failure,
    timeout_failure,
)
from reapi.storage import ledger
from reapi.storage import tasks as tasks_sql
from reapi.storage.db import Database
from reapi.storage.media import MediaStore, content_type_of
from reapi.storage.task_tables import Task
from reapi.storage.types import utcnow

log = logging.getLogger("reapi.tasks.worker")

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/aac": "aac",
    "audio/ogg": "ogg",
    "audio/mp4": "m4a",
}
_KNOWN_EXTENSIONS = frozenset(_EXTENSIONS.values())
_DEFAULT_EXTENSION = {"image": "png", "video": "mp4", "audio": "mp3"}


def output_extension(content_type: str | None, url: str | None, kind: str) -> str:
    """The stored file's extension: from the content type, else the URL, else the kind."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared in _EXTENSIONS:
        return _EXTENSIONS[declared]
    if url:
        suffix = urlsplit(url).path.rsplit(".", 1)[-1].lower()
        if suffix in _KNOWN_EXTENSIONS:
            return suffix
    return _DEFAULT_EXTENSION.get(kind, "bin")


def error_record(error: TaskError, request_id: str) -> dict[str, Any]:
    return {"code": int(error.code), "message": error.message, "request_id": request_id}


class TaskWorker:
    def __init__(
        self,
        db: Database,
        catalog: Mapping[str, TaskModel],
        channels: Sequence[Channel],
        store: MediaStore,
        *,
        upstream: aiohttp.ClientSession,
        downloads: aiohttp.ClientSession,
        settings: TaskSettings,
        owner: str,
        adapters: Mapping[str, TaskAdapter] = TASK_ADAPTERS,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._channels = {c.name: c for c in channels}
        self._store = store
        self._upstream = upstream
        self._downloads = downloads
        self._settings = settings
        self.owner = owner
        self._adapters = adapters
        self._wake = asyncio.Event()
        self._active: set[asyncio.Task[None]] = set()
        self._working: set[str] = set()  # ids of the tasks in self._active

    @property
    def has_channels(self) -> bool:
        return bool(self._channels)

    def wake(self) -> None:
        """Look for work now (a task was just submitted in this process)."""
        self._wake.set()

    async def run(self, concurrency: int, idle: float | None = None) -> None:
        """Work until cancelled, at most ``concurrency`` tasks at a time, looking for due
        tasks every ``idle`` seconds (and whenever a submit wakes it)."""
        idle = idle or min(self._settings.poll_interval, 1.0)
        try:
            while True:
                self._wake.clear()
                free = concurrency - len(self._active)
                if free > 0:
                    try:
                        claimed = await self._claim(free)
                    except Exception:
                        log.exception("claiming tasks failed; will try again")
                        claimed = []
                    for task in claimed:
                        job = asyncio.create_task(self._work(task))
                        self._active.add(job)
                        job.add_done_callback(self._active.discard)
                    if claimed and len(claimed) == free:
                        continue
                waker = asyncio.create_task(self._wake.wait())
                try:
                    await asyncio.wait(
                        {waker, *self._active}, timeout=idle, return_when="FIRST_COMPLETED"
                    )
                finally:
                    waker.cancel()
        finally:
            await self.drain()

    async def drain(self, grace: float = 10.0) -> None:
        """Let steps in flight finish (a poll, a download) before stopping; cancel the rest.
        A cancelled task keeps its lease until it expires, then another worker resumes it."""
        if not self._active:
            return
        _, pending = await asyncio.wait(set(self._active), timeout=grace)
        for job in pending:
            job.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def run_once(self, limit: int = 100) -> int:
        """Claim due tasks and take one step on each; returns how many (for tests and tools)."""
        claimed = await self._claim(limit)
        await asyncio.gather(*(self._work(task) for task in claimed))
        return len(claimed)

    async def _claim(self, limit: int) -> Sequence[Task]:
        now = utcnow()
        until = now + timedelta(seconds=self._settings.lease_seconds)
        async with self._db.session() as session:
            # Never a task this worker is still on: after a stall past its lease it would
            # otherwise take its own task over, and run it twice under the same owner.
            return await tasks_sql.claim(
                session, self.owner, now, until, limit, list(self._channels), self._working
            )

    async def _work(self, task: Task) -> None:
        self._working.add(task.id)
        keeper = asyncio.create_task(self._keep_lease(task.id))
        try:
            remaining = (task.deadline - utcnow()).total_seconds()
            if remaining <= 0:
                await self._fail(task, self._timeout(task))
                return
            try:
                async with asyncio.timeout(remaining) as deadline:
                    await self._step(task)
            except TimeoutError:
                if not deadline.expired():
                    raise
                await self._fail(task, self._timeout(task))
        except TaskError as exc:
            await self._fail(task, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task %s: step failed unexpectedly; it will be retried", task.id)
            await self._retry_later(task)
        finally:
            self._working.discard(task.id)
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep_lease(self, task_id: str) -> None:
        """Renew the lease while the step runs. If it was lost (this worker stalled past it),
        renewing stops; the step may finish its call, but every write it makes is conditional
        on holding the lease, so the worker that took over is the only one whose writes land."""
        lease = self._settings.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                async with self._db.session() as session:
                    kept = await tasks_sql.update_owned(
                        session,
                        task_id,
                        self.owner,
                        lease_until=utcnow() + timedelta(seconds=lease),
                    )
            except Exception:
                log.exception("task %s: could not renew the lease", task_id)
                continue
            if not kept:
                return

    def _timeout(self, task: Task) -> TaskError:
        model = self._catalog.get(task.model)
        seconds = (
            model.timeout_seconds
            if model is not None
            else int((task.deadline - task.created_at).total_seconds())
        )
        return timeout_failure(seconds)

    async def _step(self, task: Task) -> None:
        model = self._catalog.get(task.model)
        channel = self._channels.get(task.channel or "")
        if model is None or channel is None or channel.type not in self._adapters:
            raise TaskError(
                TaskErrorCode.NO_CHANNEL_AVAILABLE,
                f"No upstream channel serves {task.model} any more",
                detail=f"channel {task.channel!r} for {task.model} is no longer configured",
            )
        adapter = self._adapters[channel.type]
        if task.phase == "submitting":
            # The upstream may hold a job from the interrupted call: submitting again could
            # start (and bill) a second one, so the task ends here and is refunded.
            raise TaskError(
                TaskErrorCode.UPSTREAM_FAILED,
                "the worker stopped while submitting this task; it is not submitted twice",
            )
        if task.phase == "queued":
            if not await self._write(task, phase="submitting"):
                return
            try:
                job = await adapter.submit(self._upstream, channel, model, task.params)
            except SubmitError as exc:
                if not exc.certain:
                    log.warning("task %s: create call outcome unknown: %s", task.id, exc.message)
                raise submit_failure(exc) from exc
            if not await self._write(task, phase="running", upstream=job.to_json()):
                return
            state = job.result
            if state is None:
                await self._reschedule(task, job)
                return
        else:
            job = UpstreamJob.from_json(task.upstream or {})
            state = await adapter.poll(self._upstream, channel, job)
        await self._settle(task, channel, job, state)

    async def _settle(
        self, task: Task, channel: Channel, job: UpstreamJob, state: JobState
    ) -> None:
        if state.status == "processing":
            await self._reschedule(task, job)
        elif state.status == "failed":
            raise job_failure(state)
        else:
            await self._complete(task, channel, state.outputs)

    async def _write(self, task: Task, **values: Any) -> bool:
        async with self._db.session() as session:
            return await tasks_sql.update_owned(session, task.id, self.owner, **values)

    async def _reschedule(self, task: Task, job: UpstreamJob) -> None:
        polls = task.polls + 1
        wait = min(
            self._settings.poll_interval * 1.5 ** min(polls - 1, 20),
            self._settings.poll_max_interval,
        )
        next_at = min(utcnow() + timedelta(seconds=wait), task.deadline)
        await self._write(
            task,
            upstream=job.to_json(),
            polls=polls,
            next_attempt_at=next_at,
            lease_owner=None,
            lease_until=None,
        )

    async def _retry_later(self, task: Task) -> None:
        """A gateway-side fault (database hiccup, store outage): try the same step again."""
        next_at = min(utcnow() + timedelta(seconds=self._settings.poll_max_interval), task.deadline)
        with contextlib.suppress(Exception):
            await self._write(task, next_attempt_at=next_at, lease_owner=None, lease_until=None)

    async def _complete(self, task: Task, channel: Channel, outputs: Sequence[JobOutput]) -> None:
        if not outputs:
            raise TaskError(
                TaskErrorCode.OUTPUT_UNAVAILABLE, "the upstream finished with no output"
            )
        folder = task.id.removeprefix("task_")
        direct = ChannelOrigin.of(channel.base_url, self._upstream)
        records = []
        for n, output in enumerate(outputs):
            media = await download_output(self._downloads, output, direct=direct)
            ext = output_extension(media.content_type or output.content_type, output.url, task.kind)
            key = f"tasks/{folder}/{n}.{ext}"
            content_type = content_type_of(key)
            await self._store.put(key, media.data, content_type)
            records.append({"path": key, "label": output.label, "content_type": content_type})
        now = utcnow()
        retention = timedelta(hours=self._settings.retention_hours)
        async with self._db.session() as session:
            done = await tasks_sql.end(
                session,
                task.id,
                self.owner,
                status="completed",
                output=records,
                finished_at=now,
                media_expires_at=now + retention,
                **_callback_due(task, now),
            )
        if done:
            log.info("task %s completed with %d outputs", task.id, len(records))

    async def _fail(self, task: Task, error: TaskError) -> None:
        await fail_task(self._db, task, error, owner=self.owner)


async def fail_task(db: Database, task: Task, error: TaskError, *, owner: str | None) -> bool:
    """End the task as failed and refund its price, in one transaction, exactly once. Returns
    False when the task had already ended (or ``owner`` no longer holds it): nothing changed."""
    now = utcnow()
    request_id = task.request_id or new_request_id()
    async with db.session() as session:
        ended = await tasks_sql.end(
            session,
            task.id,
            owner,
            status="failed",
            error=error_record(error, request_id),
            finished_at=now,
            **_callback_due(task, now),
        )
        if ended and task.price > 0:
            await ledger.post_entry(
                session,
                task.account_id,
                task.price,
                kind="refund",
                request_id=task.id,
                user_id=task.user_id,
                key_id=task.key_id,
                model=task.model,
                channel=task.channel,
                note=f"task failed: {int(error.code)}",
            )
    if ended:
        # The client sees the code and a stable message; the cause is here, by request id.
        log.warning(
            "task %s (%s) failed with %d and was refunded: %s",
            task.id,
            request_id,
            error.code,
            error.detail or error.message,
        )
    return ended


def _callback_due(task: Task, now: datetime) -> dict[str, Any]:
    if task.callback_url is None:
        return {}
    return {"callback_state": "pending", "callback_next_at": now}
