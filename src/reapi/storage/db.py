"""Database engine and units of work, for SQLite (embedded default) and PostgreSQL.

URLs are given the way operators write them (``sqlite:///reapi.db``, ``postgresql://...``) and
mapped to the async drivers here. On SQLite every transaction starts with ``BEGIN IMMEDIATE``:
a deferred transaction that reads and then writes can fail at once with SQLITE_BUSY when another
connection wrote meanwhile, while an immediate one simply waits for the lock (busy_timeout).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class DatabaseURLError(ValueError):
    pass


def async_url(url: str) -> str:
    """Map an operator's database URL to the SQLAlchemy async driver URL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseURLError(f"{url!r} is not a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise DatabaseURLError("SQLite needs a file: sqlite:///path/to/reapi.db")
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise DatabaseURLError(
        f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://..."
    )


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


class Database:
    def __init__(self, url: str, *, pool_size: int = 3, max_overflow: int = 2) -> None:
        self.url = url
        driver_url = async_url(url)
        self.is_sqlite = driver_url.startswith("sqlite")
        options: dict[str, Any] = {}
        if not self.is_sqlite:
            options = {
                "pool_size": pool_size,
                "max_overflow": max_overflow,
                "pool_pre_ping": True,
            }
        self.engine: AsyncEngine = create_async_engine(driver_url, **options)
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads must not queue behind writers: on SQLite they begin DEFERRED (WAL readers never
        # block, nor are blocked by, the writer), and nothing they run may write.
        self._readers = async_sessionmaker(
            self.engine.execution_options(reapi_readonly=True), expire_on_commit=False
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits on clean exit, rolls back on any error. Services never commit."""
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that only reads (ending it commits nothing)."""
        async with self._readers() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query (readiness)."""
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so "begin" below decides how it starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (kill -9) without an fsync per commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        readonly = connection.get_execution_options().get("reapi_readonly")
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
