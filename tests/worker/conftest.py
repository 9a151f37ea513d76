"""Task rows for worker tests, inserted the way a submit leaves them (charged, queued)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from reapi.protocols.tasks import new_task_id
from reapi.services.keys import KeyService
from reapi.storage import ledger
from reapi.storage import tasks as tasks_sql
from reapi.storage.db import Database
from reapi.storage.task_tables import Task
from reapi.storage.types import utcnow
from tests.conftest import unique


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def charged_task(db: Database, price: int = 5_000_000, **fields: Any) -> Task:
    """A task row as ``submit`` leaves it: the user's tasks account charged ``price``."""
    user = await KeyService(db).create_user(unique("worker"))
    task_id = new_task_id()
    now = utcnow()
    async with db.session() as session:
        account = await ledger.ensure_account(session, user.id, "tasks")
        await ledger.post_entry(session, account.id, price, kind="credit", user_id=user.id)
        await ledger.post_entry(
            session, account.id, -price, kind="charge", request_id=task_id, user_id=user.id
        )
        task = Task(
            id=task_id,
            user_id=user.id,
            account_id=account.id,
            key_id="key_test",
            request_id="req_test",
            model="gpt-image-2",
            kind="image",
            status="processing",
            phase="queued",
            params={"prompt": "x"},
            price=price,
            channel="nowhere",
            polls=0,
            next_attempt_at=now,
            deadline=now + timedelta(days=1),
            callback_attempts=0,
            created_at=now,
        )
        for name, value in fields.items():
            setattr(task, name, value)
        await tasks_sql.add_task(session, task)
    return task
