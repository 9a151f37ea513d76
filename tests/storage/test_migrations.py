"""Every migration goes down and up again cleanly, on SQLite and (when the suite runs on it)
on PostgreSQL, in a database of its own so the shared test schema is left alone."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
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


def test_tasks_migration_round_trip_on_postgres() -> None:
    base = os.environ.get("REAPI_TEST_DATABASE_URL")
    if not base:
        pytest.skip("REAPI_TEST_DATABASE_URL is not set")
    name = f"{make_url(base).database}_migrations"

    async def recreate() -> None:
        engine = create_async_engine(async_url(base), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
                await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()

    asyncio.run(recreate())
    round_trip(make_url(base).set(database=name).render_as_string(hide_password=False))
