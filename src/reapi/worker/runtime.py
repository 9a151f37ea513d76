"""Builds and runs the task gateway's moving parts for one process.

``TaskRuntime.start`` is what ``create_app``'s lifespan and ``reapi worker`` call: it loads the
task catalog, opens the upstream and guarded download sessions and the media store, and starts
the background loops (task workers, webhook delivery, media sweeper); ``open`` does the same
without the loops. ``stop`` ends them and closes what it opened. The HTTP layer only reads
``service`` and ``store``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from reapi.config import Channel, Config, ConfigError, TaskSettings, load_config
from reapi.providers.tasks import espeak
from reapi.services.keys import KeyService
from reapi.services.tasks.catalog import TaskModel, load_task_models
from reapi.services.tasks.schema import CatalogError
from reapi.services.tasks.service import TaskService, task_channels
from reapi.services.tasks.urls import STRICT, UrlPolicy, guarded_connector
from reapi.settings import Settings
from reapi.storage import tasks as tasks_sql
from reapi.storage.db import Database
from reapi.storage.media import LocalMediaStore, MediaStore
from reapi.storage.types import utcnow
from reapi.worker.tasks import TaskWorker
from reapi.worker.webhooks import WebhookSender

log = logging.getLogger("reapi.tasks")


def load_catalog(config: Config) -> dict[str, TaskModel]:
    """The task catalog, with the task channels checked against it (at startup, not per call)."""
    try:
        catalog = load_task_models(config.task_models)
    except CatalogError as exc:
        raise ConfigError(str(exc)) from None
    for channel in task_channels(config.channels):
        for model in channel.models:
            if model not in catalog:
                raise ConfigError(
                    f"channel {channel.name!r} is a {channel.type} task channel but lists "
                    f"{model!r}, which is not an enabled task model"
                )
            entry = catalog[model]
            if not entry.priced:
                # Serving a model nobody priced would give it away: say so before it happens.
                raise ConfigError(
                    f"model {model!r} is served by channel {channel.name!r} but has no price "
                    f"(none is public): {entry.missing_price()}"
                )
    return catalog


async def start_local_engines(
    catalog: Mapping[str, TaskModel], channels: Sequence[Channel]
) -> None:
    """Load the engines of local task channels now, so a missing extra or a voice the engine
    lacks stops the gateway at startup instead of failing (and refunding) every task."""
    speech = [c for c in channels if c.type == espeak.EspeakAdapter.type]
    if not speech:
        return
    voices = await espeak.start()
    for channel in speech:
        for name in channel.models:
            spec = catalog[name].schema.get("voice")
            missing = [v for v in (spec.enum or ()) if str(v).lower() not in voices] if spec else []
            if missing:
                raise ConfigError(
                    f"models.{name}.schema.voice offers {', '.join(map(str, missing))}, which "
                    f"eSpeak NG does not have (channel {channel.name!r})"
                )


def url_policy(settings: TaskSettings) -> UrlPolicy:
    return UrlPolicy.allowing(*settings.allow_private) if settings.allow_private else STRICT


def media_store(settings: TaskSettings) -> MediaStore:
    if settings.s3 is not None:
        from reapi.storage.s3 import S3MediaStore

        return S3MediaStore(settings.s3)
    return LocalMediaStore(Path(settings.media_dir))


@dataclass
class TaskRuntime:
    db: Database
    settings: TaskSettings
    service: TaskService
    store: MediaStore
    worker: TaskWorker
    webhooks: WebhookSender | None
    sessions: tuple[aiohttp.ClientSession, ...]
    max_request_bytes: int = 32 * 1024 * 1024
    loops: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        config: Config,
        db: Database,
        keys: KeyService,
        *,
        workers: int | None = None,
    ) -> TaskRuntime:
        """``workers``: concurrent tasks this process works on (default: ``tasks.workers``);
        0 runs no task worker here, only webhooks and the sweeper."""
        runtime = await cls.open(settings, config, db, keys)
        runtime.run_loops(config.tasks.workers if workers is None else workers)
        return runtime

    @classmethod
    async def open(
        cls, settings: Settings, config: Config, db: Database, keys: KeyService
    ) -> TaskRuntime:
        """Everything but the background loops, for a caller that runs the worker, the
        webhooks and the sweeper itself, when it chooses (tests that must not race them)."""
        tasks = config.tasks
        catalog = load_catalog(config)
        channels = task_channels(config.channels)
        await start_local_engines(catalog, channels)
        policy = url_policy(tasks)
        upstream = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                # A task call has no read-silence limit, so bound the whole call.
                total=settings.upstream_total_timeout or 3600,
                sock_connect=settings.upstream_connect_timeout,
            )
        )
        downloads = aiohttp.ClientSession(connector=guarded_connector(policy))
        store = media_store(tasks)
        # Output URLs use the tasks section's origin, else the gateway's own (else the poll's).
        public_url = tasks.public_url or config.public_url
        owner = f"{settings.node_id}/{os.getpid()}/{secrets.token_hex(3)}"
        worker = TaskWorker(
            db,
            catalog,
            channels,
            store,
            upstream=upstream,
            downloads=downloads,
            settings=tasks,
            owner=owner,
        )
        secret = tasks.webhook_secret.get_secret_value() if tasks.webhook_secret else None
        webhooks = (
            WebhookSender(
                db,
                downloads,
                secret.encode(),
                max_attempts=tasks.webhook_max_attempts,
                backoff=tasks.webhook_backoff,
                public_url=public_url,
            )
            if secret
            else None
        )
        service = TaskService(
            db,
            keys,
            catalog,
            channels,
            policy=policy,
            probe_session=downloads,
            public_url=public_url,
            webhooks_enabled=webhooks is not None,
            on_submitted=worker.wake,
        )
        return cls(
            db,
            tasks,
            service,
            store,
            worker,
            webhooks,
            (upstream, downloads),
            settings.max_request_bytes,
        )

    def run_loops(self, workers: int) -> None:
        """Start the task workers (``workers`` at once; none when 0), webhook delivery and the
        media sweeper in the background, until ``stop``."""
        if workers > 0:
            # Each look for due tasks is a write transaction. A gateway with no task channel
            # serves no new task, so it only looks now and then, to end (and refund) tasks left
            # from an earlier configuration, rather than competing every second with the chat
            # path's writes.
            idle = None if self.worker.has_channels else _IDLE_WITHOUT_CHANNELS
            self.loops.append(asyncio.create_task(self.worker.run(workers, idle)))
        if self.webhooks is not None:
            self.loops.append(asyncio.create_task(_every(1.0, self.webhooks.deliver_due)))
        self.loops.append(asyncio.create_task(_every(self.settings.sweep_interval, self.sweep)))

    async def sweep(self) -> int:
        """Delete mirrored media past retention. Safe to run in every process at once."""
        async with self.db.session() as session:
            expired = await tasks_sql.expired_media(session, utcnow(), 500)
        for task_id in expired:
            await self.store.delete_prefix(f"tasks/{task_id.removeprefix('task_')}/")
            async with self.db.session() as session:
                await tasks_sql.forget_media(session, task_id)
        if expired:
            log.info("deleted the media of %d tasks past retention", len(expired))
        return len(expired)

    async def stop(self) -> None:
        for loop in self.loops:
            loop.cancel()
        await asyncio.gather(*self.loops, return_exceptions=True)
        for session in self.sessions:
            await session.close()
        await self.store.close()


_IDLE_WITHOUT_CHANNELS = 30.0


async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        try:
            await job()
        except Exception:
            log.exception("background task job failed; will try again")
        await asyncio.sleep(seconds)


async def run_workers(settings: Settings, concurrency: int | None = None) -> None:
    """``reapi worker``: task workers (plus webhooks and the sweeper) without HTTP, until
    SIGTERM or SIGINT. Steps in flight get a few seconds to finish; anything cut off is
    resumed by another worker when its lease runs out."""
    config = load_config(settings.config_path, settings.environ)
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runtime = await TaskRuntime.start(
        settings,
        config,
        db,
        KeyService(db),
        workers=concurrency if concurrency is not None else max(config.tasks.workers, 1),
    )
    if not task_channels(config.channels):
        log.warning("no task channels are configured: this worker can only expire old tasks")
    log.info("task worker %s started", runtime.worker.owner)
    try:
        await stop.wait()
    finally:
        await runtime.stop()
        await db.dispose()
        with contextlib.suppress(Exception):
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
