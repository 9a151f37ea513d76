"""Every migration goes down and up again cleanly, on SQLite and (when the suite runs on it)
on PostgreSQL, in an empty database of its own (the run's database is already migrated)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from reapi.storage import migrate
from reapi.storage.db import async_url
from tests.gateway_process import REAPI


def tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def round_trip(url: str) -> None:
    migrate.upgrade(url)
    assert "tasks" in tables(url)
    migrate.downgrade(url, "0002")
    assert "tasks" not in tables(url)
    assert "ledger" in tables(url)
    migrate.upgrade(url)
    assert "tasks" in tables(url)


def test_tasks_migration_round_trip_on_sqlite(tmp_path: Path) -> None:
    round_trip(f"sqlite:///{tmp_path / 'm.db'}")


def test_tasks_migration_round_trip_on_postgres(fresh_postgres_url: str) -> None:
    round_trip(fresh_postgres_url)


def test_nodes_starting_together_migrate_a_fresh_postgres_once(fresh_postgres_url: str) -> None:
    url = fresh_postgres_url
    # As several nodes do when started at once: each runs every migration from nothing.
    runs = [
        subprocess.Popen(
            [REAPI, "migrate"],
            env={**os.environ, "REAPI_DATABASE_URL": url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(run.wait(120), *run.communicate()) for run in runs]
    for code, _out, err in results:
        assert code == 0, err
    assert "tasks" in tables(url)

    async def versions() -> list[str]:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                return [row[0] for row in rows]
        finally:
            await engine.dispose()

    head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
    assert asyncio.run(versions()) == [head]
