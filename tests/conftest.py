"""Shared fixtures: a real database (SQLite by default; a PostgreSQL database of the run's own,
created and dropped on the server REAPI_TEST_DATABASE_URL names, when it is set), fake
upstreams on 127.0.0.1 and a real gateway server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from reapi.app import create_app
from reapi.config import Config, build_config
from reapi.money import usd_to_units
from reapi.services.billing import Balance, BillingService
from reapi.services.keys import KeyService
from reapi.services.limits import LocalLimiter
from reapi.settings import Settings
from reapi.storage import migrate
from reapi.storage.db import Database, async_url
from tests.clients import close_all
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import UvicornThread

# OpenAI's published spec, kept in the repository (see specs/README.md).
OPENAI_SPEC = Path(__file__).parent / "specs" / "openai-openapi.yaml"

_counter = iter(range(1, 10**9))


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid()}x{next(_counter)}"


# Fixtures that reach the database; every test that needs one, directly or through another
# fixture, is marked ``store`` (see pytest_collection_modifyitems).
STORE_FIXTURES = frozenset({"database_url", "fresh_postgres_url"})


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if STORE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.store)


def postgres_server() -> str | None:
    """The PostgreSQL server the suite may create its own databases on, if it runs on one."""
    return os.environ.get("REAPI_TEST_DATABASE_URL") or None


@contextlib.contextmanager
def own_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server ``server_url`` points to, dropped on the way out
    (whether the tests passed or not). ``server_url`` only serves to connect: its own database
    and any other on the server are never touched, and runs at the same time each get their
    own name, so they cannot meet."""
    name = f"reapi_test_{os.getpid()}_{secrets.token_hex(4)}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a gateway process a test killed may still hold a connection to it.
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(server_url: str, statement: str) -> None:
    """CREATE/DROP DATABASE cannot run inside a transaction."""

    async def run() -> None:
        engine = create_async_engine(async_url(server_url), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The run's database, migrated: a new PostgreSQL database when REAPI_TEST_DATABASE_URL
    names a server, else a SQLite file in the run's temporary directory."""
    server = postgres_server()
    if server is None:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'reapi.db'}"
        migrate.upgrade(url)
        yield url
        return
    with own_database(server) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database for one test, when the suite runs on PostgreSQL."""
    server = postgres_server()
    if server is None:
        pytest.skip("REAPI_TEST_DATABASE_URL is not set")
    with own_database(server) as url:
        yield url


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    yield
    close_all()


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(fake_openai: FakeOpenAI) -> FakeOpenAI:
    fake_openai.reset()
    return fake_openai


def gateway_config(openai_url: str, **extra: Any) -> Config:
    raw: dict[str, Any] = {
        "channels": [
            {
                "name": "fake-openai",
                "type": "openai",
                "base_url": openai_url,
                "api_key": "sk-upstream-secret",
                "models": ["gpt-5.5", "gpt-5.4", "claude-sonnet-4-6", "mapped-model"],
                "model_map": {"mapped-model": "upstream-name-7"},
                "groups": ["default", "vip"],
                # Short enough that a test of a silent upstream ends quickly.
                "timeouts": {"first_byte": 3, "between_chunks": 3},
            }
        ],
        "models": {
            "gpt-5.5": {"input_per_mtok": "1.25", "output_per_mtok": "10.00"},
            "gpt-5.4": {
                "input_per_mtok": "0.75",
                "output_per_mtok": "4.50",
                "cached_input_per_mtok": "0.075",
            },
            "claude-sonnet-4-6": {
                "input_per_mtok": "3",
                "output_per_mtok": "15",
                "cached_input_per_mtok": "0.30",
                "cache_write_per_mtok": "3.75",
            },
            "mapped-model": {"owned_by": "tests", "free": True},
        },
        "groups": {"default": {}, "vip": {}, "lonely": {}},
    }
    for key, value in extra.items():
        raw[key] = value
    return build_config(raw)


class Gateway:
    def __init__(self, server: UvicornThread, settings: Settings) -> None:
        self.server = server
        self.settings = settings
        self.url = server.url

    def key(
        self,
        *,
        groups: tuple[str, ...] = ("default",),
        group: str | None = None,
        credit: str | None = "100",
    ) -> str:
        """A new user with one chat key and ``credit`` USD; returns the secret."""
        return self.user(groups=groups, group=group, credit=credit)[1]

    def user(
        self,
        *,
        groups: tuple[str, ...] = ("default",),
        group: str | None = None,
        credit: str | None = "100",
    ) -> tuple[str, str]:
        """A new user (name, key secret) with ``credit`` USD in the chat workspace."""

        async def make() -> tuple[str, str]:
            db = Database(self.settings.database_url)
            try:
                service = KeyService(db)
                user = await service.create_user(unique("user"), groups)
                if credit is not None:
                    billing = BillingService(db, LocalLimiter(), node_id="tests")
                    await billing.credit(user.name, usd_to_units(credit))
                return user.name, (await service.create_key(user.name, group=group)).secret
            finally:
                await db.dispose()

        return asyncio.run(make())

    def balance(self, name: str, workspace: str = "chat") -> Balance:
        async def read() -> Balance:
            db = Database(self.settings.database_url)
            try:
                return await BillingService(db, LocalLimiter(), node_id="tests").balance(
                    name, workspace
                )
            finally:
                await db.dispose()

        return asyncio.run(read())

    def billing(self, work: Callable[[BillingService], Awaitable[Any]]) -> Any:
        """Run ``work`` against a BillingService on the gateway's database."""

        async def run() -> Any:
            db = Database(self.settings.database_url)
            try:
                return await work(BillingService(db, LocalLimiter(), node_id="tests"))
            finally:
                await db.dispose()

        return asyncio.run(run())


def start_gateway(settings: Settings, config: Config) -> Gateway:
    server = UvicornThread(lambda: create_app(settings, config), settings=settings).start()
    return Gateway(server, settings)


@pytest.fixture(scope="module")
def gateway(
    fake_openai: FakeOpenAI, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    settings = Settings(database_url=database_url, key_cache_seconds=0.2)
    config = gateway_config(fake_openai.base_url)
    server = UvicornThread(lambda: create_app(settings, config), settings=settings).start()
    yield Gateway(server, settings)
    server.stop()


@pytest.fixture(scope="session")
def openai_spec() -> dict[str, Any]:
    import yaml

    with OPENAI_SPEC.open() as handle:
        return dict(yaml.load(handle, Loader=yaml.CSafeLoader))
