"""The runtime's housekeeping: media past retention is deleted by the sweeper (which a started
runtime runs by itself), and a task channel listing something that is not a task model stops
startup."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reapi.config import Config, ConfigError, build_config
from reapi.services.keys import KeyService
from reapi.settings import Settings
from reapi.storage import tasks as tasks_sql
from reapi.storage.db import Database
from reapi.storage.media import LocalMediaStore
from reapi.storage.types import utcnow
from reapi.worker.runtime import TaskRuntime, load_catalog
from tests.worker.conftest import charged_task


async def test_sweeper_deletes_expired_media_only(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    config = build_config({"tasks": {"media_dir": str(tmp_path), "workers": 0}})
    # Without its background loops: the runtime's own sweep could otherwise forget the old
    # task's media before its file is written, and the sweep below would find nothing.
    runtime = await TaskRuntime.open(
        Settings(database_url=database_url), config, db, KeyService(db)
    )
    try:
        past, future = utcnow() - timedelta(minutes=1), utcnow() + timedelta(hours=1)
        old = await charged_task(db, status="completed", media_expires_at=past)
        fresh = await charged_task(db, status="completed", media_expires_at=future)
        for task in (old, fresh):
            await runtime.store.put(f"tasks/{task.id[5:]}/0.png", b"png", "image/png")
        assert await runtime.sweep() >= 1  # other tests' expired media may be swept as well
        assert await runtime.store.fetch(f"tasks/{old.id[5:]}/0.png") is None
        assert await runtime.store.fetch(f"tasks/{fresh.id[5:]}/0.png") is not None
        async with db.session() as session:
            swept = await tasks_sql.get(session, old.id)
        assert swept is not None and swept.media_expires_at is None
        assert not (tmp_path / "tasks" / old.id[5:]).exists()
    finally:
        await runtime.stop()


async def test_a_started_runtime_sweeps_by_itself(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    old = await charged_task(
        db, status="completed", media_expires_at=utcnow() - timedelta(minutes=1)
    )
    media = LocalMediaStore(tmp_path)
    await media.put(f"tasks/{old.id[5:]}/0.png", b"png", "image/png")
    await media.close()
    config = build_config({"tasks": {"media_dir": str(tmp_path), "workers": 0}})
    runtime = await TaskRuntime.start(
        Settings(database_url=database_url), config, db, KeyService(db)
    )
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while (tmp_path / "tasks" / old.id[5:]).exists():
            assert asyncio.get_running_loop().time() < deadline, "the sweeper never ran"
            await asyncio.sleep(0.05)
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


def _serving(model: str, channel_type: str = "reapi", **models: Any) -> Config:
    return build_config(
        {
            "channels": [
                {"name": "up", "type": channel_type, "base_url": "https://up.example.com",
                 "models": [model]},
            ],
            "models": models,
        }
    )  # fmt: skip


@pytest.mark.parametrize(
    ("model", "channel_type", "what"),
    [
        ("veo3.1-fast", "fal", "set models.veo3.1-fast.billing.credits (per generation)"),
        ("gpt-image-2", "openai_images",
         "set models.gpt-image-2.billing.credits (per generation, keyed by resolution)"),
        ("doubao-seedance-2.0", "reapi", "set models.doubao-seedance-2.0.billing (unit: one of"),
    ],
)  # fmt: skip
def test_serving_a_model_without_a_public_price_needs_the_operators(
    model: str, channel_type: str, what: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_catalog(_serving(model, channel_type))
    message = str(info.value)
    assert f"model {model!r} is served by channel 'up' but has no price" in message
    assert what in message


def test_a_public_or_operator_price_lets_the_model_be_served() -> None:
    assert load_catalog(_serving("happyhorse-1.0"))["happyhorse-1.0"].priced
    priced = load_catalog(
        _serving("veo3.1-fast", "fal", **{"veo3.1-fast": {"kind": "video",
                                                          "billing": {"credits": "400"}}})
    )  # fmt: skip
    assert priced["veo3.1-fast"].priced and priced["veo3.1-fast"].unknown == ()
    # Not served: no price needed yet.
    assert not load_catalog(_serving("happyhorse-1.0"))["veo3.1-fast"].priced
