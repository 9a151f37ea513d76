"""Settlement never leaves a hold behind: a store that refuses a settlement gets it again until
it takes it (or, past the retries, a release without charge), and `ledger verify` reports any
hold that has been open too long. The store's refusal is real: a trigger in the real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
import sqlalchemy as sa

from reapi.config import ChatModel, Group
from reapi.protocols.output import OutputBound
from reapi.protocols.usage import Usage
from reapi.services.billing import BillingService
from reapi.services.calls import CallRecord
from reapi.services.keys import KeyService, Principal
from reapi.services.limits import LocalLimiter
from reapi.storage.db import Database
from reapi.storage.hot_ledger import HotLedger, hot_ledger_for
from tests.conftest import unique

MODEL = ChatModel(name="m", input_per_mtok=Decimal("2"), output_per_mtok=Decimal("8"))
GROUP = Group(name="default")
BODY = {"messages": [{"role": "user", "content": "hello there"}]}


class Books:
    def __init__(self, database_url: str, hot: HotLedger, **options: float) -> None:
        self.url = database_url
        self.db = Database(database_url)
        self.hot = hot
        self.billing = BillingService(
            self.db, LocalLimiter(), node_id="settle-tests", hot=hot, **options
        )
        self.name = unique("settle")
        self.principal: Principal | None = None

    async def open_account(self, usd: int = 10) -> Principal:
        keys = KeyService(self.db)
        user = await keys.create_user(self.name)
        key = await keys.create_key(self.name)
        await self.billing.credit(self.name, usd * 10**9)
        await self.billing.heartbeat()
        self.principal = Principal(key.key.id, user.id, user.name, "chat", ("default",), None)
        return self.principal

    async def admit(self) -> CallRecord:
        assert self.principal is not None
        call = CallRecord(
            endpoint="test", user_id=self.principal.user_id, key_id=self.principal.key_id
        )
        call.model = "m"
        await self.billing.admit(call, self.principal, MODEL, GROUP, dict(BODY), OutputBound(100))
        return call

    async def refuse_usage_records(self, only_charges: bool = False) -> None:
        """Make the database refuse this user's usage records (all, or only those of calls
        that are not a release without charge)."""
        assert self.principal is not None
        user = self.principal.user_id
        async with self.db.session() as session:
            if self.db.is_sqlite:
                extra = " AND NEW.outcome <> 'settle_failed'" if only_charges else ""
                await session.execute(
                    sa.text(
                        f"CREATE TRIGGER refuse_{user} BEFORE INSERT ON usage_records "
                        f"WHEN NEW.user_id = {user}{extra} "
                        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                    )
                )
            else:
                extra = " AND NEW.outcome <> 'settle_failed'" if only_charges else ""
                await session.execute(
                    sa.text(
                        f"CREATE FUNCTION refuse_{user}() RETURNS trigger AS $$ BEGIN "
                        "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                    )
                )
                await session.execute(
                    sa.text(
                        f"CREATE TRIGGER refuse_{user} BEFORE INSERT ON usage_records "
                        f"FOR EACH ROW WHEN (NEW.user_id = {user}{extra}) "
                        f"EXECUTE FUNCTION refuse_{user}()"
                    )
                )

    async def accept_usage_records(self) -> None:
        assert self.principal is not None
        user = self.principal.user_id
        async with self.db.session() as session:
            if self.db.is_sqlite:
                await session.execute(sa.text(f"DROP TRIGGER refuse_{user}"))
            else:
                await session.execute(sa.text(f"DROP TRIGGER refuse_{user} ON usage_records"))
                await session.execute(sa.text(f"DROP FUNCTION refuse_{user}()"))

    async def held(self) -> int:
        return (await self.billing.balance(self.name)).held

    async def until_released(self) -> None:
        for _ in range(200):
            if not await self.held():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the hold is still open")


@pytest.fixture
async def open_books(database_url: str) -> AsyncIterator[Callable[..., Books]]:
    ledger = hot_ledger_for(database_url)
    await ledger.start()
    made: list[Books] = []

    def make(**options: float) -> Books:
        made.append(Books(database_url, ledger, **options))
        return made[-1]

    yield make
    for books in made:
        await books.billing.drain()
        await books.db.dispose()
    await ledger.close()


async def test_a_refused_settlement_is_retried_until_the_store_takes_it(
    open_books: Callable[..., Books],
) -> None:
    books = open_books(settle_retry_delay=0.05)
    await books.open_account()
    await books.refuse_usage_records()
    call = await books.admit()
    call.outcome = "ok"
    call.usage = Usage(5, 40)
    cost = await books.billing.close(call)  # does not raise: the answer still goes out
    assert cost == 5 * 2000 + 40 * 8000
    assert await books.held() > 0
    await books.accept_usage_records()
    await books.until_released()
    state = await books.billing.balance(books.name)
    assert state.balance == 10 * 10**9 - cost  # charged once, by the retry
    assert not await books.billing.verify()


async def test_a_settlement_refused_for_good_only_releases_the_hold(
    open_books: Callable[..., Books],
) -> None:
    books = open_books(settle_retry_delay=0.02, settle_attempts=2)
    await books.open_account()
    await books.refuse_usage_records(only_charges=True)
    call = await books.admit()
    call.outcome = "ok"
    call.usage = Usage(5, 40)
    await books.billing.close(call)
    await books.until_released()
    state = await books.billing.balance(books.name)
    assert state.balance == 10 * 10**9  # free, never stuck
    assert not await books.billing.verify()
    await books.accept_usage_records()


async def test_verify_reports_a_hold_open_longer_than_the_limit(
    open_books: Callable[..., Books],
) -> None:
    books = open_books(hold_max_age=0.0)
    await books.open_account()
    call = await books.admit()
    await asyncio.sleep(0.01)
    problems = await books.billing.verify()
    assert any(call.request_id in p and "still open" in p for p in problems), problems
    call.outcome = "upstream_error"
    await books.billing.close(call)
    assert not [p for p in await books.billing.verify() if call.request_id in p]
