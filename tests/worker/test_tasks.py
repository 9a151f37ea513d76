"""The worker's money rules, below HTTP: failing and refunding are one transaction and happen
once; a claimed task has one owner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from reapi.config import TaskSettings
from reapi.protocols.tasks import TaskError, TaskErrorCode
from reapi.storage import ledger
from reapi.storage import tasks as tasks_sql
from reapi.storage.db import Database
from reapi.storage.media import LocalMediaStore
from reapi.storage.tables import LedgerEntry
from reapi.storage.types import utcnow
from reapi.worker.tasks import TaskWorker, fail_task, output_extension
from tests.worker.conftest import charged_task

FAILED = TaskError(TaskErrorCode.UPSTREAM_FAILED, "boom")


async def refunds(db: Database, task_id: str) -> list[int]:
    async with db.session() as session:
        rows = await session.execute(
            select(LedgerEntry.amount).where(
                LedgerEntry.request_id == task_id, LedgerEntry.kind == "refund"
            )
        )
        return [int(r[0]) for r in rows]


async def status(db: Database, task_id: str) -> str:
    async with db.session() as session:
        task = await tasks_sql.get(session, task_id)
    assert task is not None
    return task.status


async def test_failed_is_never_committed_without_its_refund(db: Database) -> None:
    task = await charged_task(db)
    # Sabotage the refund: a row already holds its (request_id, kind), so the insert fails.
    async with db.session() as session:
        await ledger.post_entry(
            session, task.account_id, 0, kind="refund", request_id=task.id, user_id=task.user_id
        )
    with pytest.raises(IntegrityError):
        await fail_task(db, task, FAILED, owner=None)
    assert await status(db, task.id) == "processing"


async def test_concurrent_failures_refund_once(db: Database) -> None:
    task = await charged_task(db, price=7_000_000)
    results = await asyncio.gather(*(fail_task(db, task, FAILED, owner=None) for _ in range(6)))
    assert results.count(True) == 1
    assert await refunds(db, task.id) == [7_000_000]
    assert await status(db, task.id) == "failed"
    async with db.session() as session:
        account = await ledger.account(session, task.user_id, "tasks")
    assert account is not None and account.balance == 7_000_000


async def test_a_lost_lease_cannot_end_the_task(db: Database) -> None:
    task = await charged_task(db, lease_owner="worker-a")
    assert not await fail_task(db, task, FAILED, owner="worker-b")
    assert await status(db, task.id) == "processing"
    assert await fail_task(db, task, FAILED, owner="worker-a")


async def test_each_due_task_is_claimed_by_one_worker(db: Database) -> None:
    channel = f"claim-{id(db)}"
    ids = {(await charged_task(db, channel=channel)).id for _ in range(12)}
    now = utcnow()

    async def claim(owner: str) -> list[str]:
        taken: list[str] = []
        for _ in range(6):
            async with db.session() as session:
                got = await tasks_sql.claim(
                    session, owner, now, now.replace(year=now.year + 1), 2, [channel]
                )
            taken += [t.id for t in got]
        return taken

    claimed = await asyncio.gather(*(claim(f"w{i}") for i in range(4)))
    flat = [task_id for batch in claimed for task_id in batch]
    assert sorted(flat) == sorted(ids)


def test_output_extensions() -> None:
    assert output_extension("image/jpeg; charset=binary", None, "image") == "jpg"
    assert output_extension(None, "https://cdn.example.com/a/b.webm?sig=1", "video") == "webm"
    assert output_extension("application/octet-stream", "https://x.example/file", "audio") == "mp3"


async def test_any_worker_ends_a_task_past_its_deadline_but_leaves_others_alone(
    db: Database, tmp_path: Path
) -> None:
    from datetime import timedelta

    late = await charged_task(db, channel="gone", deadline=utcnow() - timedelta(seconds=1))
    alive = await charged_task(db, channel="gone")
    async with aiohttp.ClientSession() as session:
        worker = TaskWorker(
            db, {}, [], LocalMediaStore(tmp_path), upstream=session, downloads=session,
            settings=TaskSettings(), owner="test-worker",
        )  # fmt: skip
        while await worker.run_once():
            pass
    assert await status(db, late.id) == "failed"
    assert await refunds(db, late.id) == [late.price]
    async with db.session() as session:
        ended = await tasks_sql.get(session, late.id)
        untouched = await tasks_sql.get(session, alive.id)
    assert ended is not None and ended.error is not None
    assert ended.error["code"] == TaskErrorCode.UPSTREAM_TIMEOUT
    assert untouched is not None and untouched.lease_owner is None
    assert untouched.status == "processing"
