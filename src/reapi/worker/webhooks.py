"""Webhook delivery: POST the final task object to the task's ``callback_url``.

The body is signed: ``X-Reapi-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` over
``"<t>." + body`` with the operator's webhook secret, so a receiver can check both origin and
freshness. A delivery counts once the receiver answers 2xx; otherwise it is retried with
exponential backoff up to ``webhook_max_attempts`` times. Deliveries go through the guarded
download session: a callback URL is client-supplied, like a media URL.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import timedelta

import aiohttp
import orjson

from reapi.protocols.tasks import render_task
from reapi.services.tasks.service import view
from reapi.storage import tasks as tasks_sql
from reapi.storage.db import Database
from reapi.storage.task_tables import Task
from reapi.storage.types import utcnow

log = logging.getLogger("reapi.tasks.webhooks")

SIGNATURE_HEADER = "X-Reapi-Signature"
_TIMEOUT = aiohttp.ClientTimeout(total=15, sock_connect=5)
# How long a taken delivery is reserved for its sender before another may retry it.
_IN_FLIGHT = timedelta(seconds=60)
_MAX_BACKOFF = 3600.0


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, header: str, body: bytes, *, tolerance: float = 300.0) -> bool:
    """What a receiver runs (also used by the tests)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookSender:
    def __init__(
        self,
        db: Database,
        session: aiohttp.ClientSession,
        secret: bytes,
        *,
        max_attempts: int,
        backoff: float,
        public_url: str | None = None,
    ) -> None:
        self._db = db
        self._session = session
        self._secret = secret
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._public_url = public_url

    async def deliver_due(self, limit: int = 20) -> int:
        now = utcnow()
        async with self._db.session() as session:
            due = await tasks_sql.claim_callbacks(session, now, now + _IN_FLIGHT, limit)
        for task in due:
            await self._deliver(task)
        return len(due)

    async def _deliver(self, task: Task) -> None:
        assert task.callback_url is not None
        origin = self._public_url or task.origin or ""
        body = orjson.dumps(render_task(view(task, origin)))
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, int(time.time()), body),
            "X-Reapi-Task-Id": task.id,
            "User-Agent": "reapi-webhooks/1",
        }
        status: int | str
        try:
            async with self._session.post(
                task.callback_url,
                data=body,
                headers=headers,
                timeout=_TIMEOUT,
                allow_redirects=False,
            ) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            status = type(exc).__name__
        async with self._db.session() as session:
            if isinstance(status, int) and 200 <= status < 300:
                await tasks_sql.set_callback(
                    session, task.id, callback_state="delivered", callback_next_at=None
                )
                return
            if task.callback_attempts >= self._max_attempts:
                log.warning("task %s: webhook gave up after %s", task.id, status)
                await tasks_sql.set_callback(
                    session, task.id, callback_state="failed", callback_next_at=None
                )
                return
            wait = min(self._backoff * 2 ** (task.callback_attempts - 1), _MAX_BACKOFF)
            await tasks_sql.set_callback(
                session, task.id, callback_next_at=utcnow() + timedelta(seconds=wait)
            )
