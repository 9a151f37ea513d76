"""A worker whose lease ran out while it was still working (a stall longer than the lease)
keeps its task: it does not take it over from itself and run it a second time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from reapi.settings import Settings
from reapi.storage.db import Database
from reapi.storage.task_tables import Task
from reapi.storage.types import utcnow
from tests.task_gateway import TaskFakes, TaskGateway, creates, task_config


@pytest.fixture(scope="module")
def fakes() -> Iterator[TaskFakes]:
    fakes = TaskFakes()
    yield fakes
    fakes.stop()


@pytest.fixture(scope="module")
def gw(
    fakes: TaskFakes, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TaskGateway]:
    # A long lease, so the worker's own renewals never undo the expiry the test writes.
    config = task_config(fakes, tmp_path_factory.mktemp("media"), workers=2, lease_seconds=60)
    gateway = TaskGateway(Settings(database_url=database_url), config)
    yield gateway
    gateway.stop()


def expire_lease(gw: TaskGateway, task_id: str) -> None:
    async def work(db: Database) -> None:
        async with db.session() as session:
            await session.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(lease_until=utcnow() - timedelta(seconds=1))
            )

    gw._run(work)


def test_a_stalled_worker_does_not_take_its_own_task_over(
    gw: TaskGateway, fakes: TaskFakes
) -> None:
    fakes.reset()
    release = threading.Event()
    fakes.openai.behaviour.create_release = release  # a synchronous generation, in flight
    _, key = gw.user("1000")
    try:
        held = gw.submit(key, "images", {"model": "gpt-image-2", "prompt": "x"}).json()["id"]
        deadline = time.monotonic() + 60
        while creates(fakes.openai) < 1:
            assert time.monotonic() < deadline, "the create call never came"
            time.sleep(0.02)
        expire_lease(gw, held)  # what a stall past the lease leaves in the database
        # The worker claims due tasks oldest first: finishing this one means it has looked
        # since the lease ran out, and passed over the task it is still on.
        other = gw.submit(key, "videos", {"model": "veo3.1-fast", "prompt": "x"}).json()["id"]
        assert gw.wait(key, other, timeout=60)["status"] == "completed"
        assert gw.get(key, held).json()["status"] == "processing"
    finally:
        release.set()
    task = gw.wait(key, held, timeout=60)
    assert task["status"] == "completed", task
    assert creates(fakes.openai) == 1
    assert gw.verify() == []
