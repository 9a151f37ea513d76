"""Every migration goes down and up again cleanly, on SQLite and (when the suite runs on it)
on PostgreSQL, in an empty database of its own (the run's database is already migrated)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from reapi.storage import migrate
from reapi.storage.db import async_url


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
