"""Alembic environment: runs migrations over the async engine of the configured database."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from reapi.storage import task_tables  # noqa: F401  (registers the tasks table)
from reapi.storage.db import async_url
from reapi.storage.tables import Base

config = context.config

# Nodes starting together all run the migrations: on PostgreSQL each takes this lock first, in
# the migration's own transaction, so one migrates while the others wait and then find the
# schema current. (Any fixed 64-bit number; this one is "reapi" in ASCII.)
MIGRATION_LOCK = 0x7265617069


def _run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(async_url(config.attributes["database_url"]))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(_main())
