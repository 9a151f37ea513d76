"""The runtime's housekeeping: media past retention is deleted by the sweeper, and a task
channel listing something that is not a task model stops startup."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from reapi.config import ConfigError, build_config
from reapi.services.keys import KeyService
from reapi.settings import Settings
from reapi.storage import tasks as tasks_sql
from reapi.storage.db import Database
from reapi.storage.types import utcnow
from reapi.worker.runtime import TaskRuntime, load_catalog
from tests.worker.conftest import charged_task


async def test_sweeper_deletes_expired_media_only(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    config = build_config({"tasks": {"media_dir": str(tmp_path), "workers": 0}})
    runtime = await TaskRuntime.start(
        Settings(database_url=database_url), config, db, KeyService(db)
    )
    try:
        past, future = utcnow() - timedelta(minutes=1), utcnow() + timedelta(hours=1)
        old = await charged_task(db, status="completed", media_expires_at=past)
        fresh = await charged_task(db, status="completed", media_expires_at=future)
        for task in (old, fresh):
            await runtime.store.put(f"tasks/{task.id[5:]}/0.png", b"png", "image/png")
        assert await runtime.sweep() >= 1
        assert await runtime.store.fetch(f"tasks/{old.id[5:]}/0.png") is None
        assert await runtime.store.fetch(f"tasks/{fresh.id[5:]}/0.png") is not None
        async with db.session() as session:
            swept = await tasks_sql.get(session, old.id)
        assert swept is not None and swept.media_expires_at is None
        assert not (tmp_path / "tasks" / old.id[5:]).exists()
    finally:
        await runtime.stop()


def test_task_channel_with_a_chat_model_is_a_config_error() -> None:
    config = build_config(
        {
            "channels": [
                {"name": "f", "type": "fal", "base_url": "https://queue.fal.run",
                 "models": ["gpt-5.5"]},
            ],
            "models": {"gpt-5.5": {"input_per_mtok": "1", "output_per_mtok": "2"}},
        }
    )  # fmt: skip
    with pytest.raises(ConfigError, match="not an enabled task model"):
        load_catalog(config)
