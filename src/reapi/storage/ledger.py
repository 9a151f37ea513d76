"""The SQL of money: accounts, holds, ledger entries, usage records, key spend.

Every function runs inside the caller's unit of work. The conditional UPDATEs are what make
admission atomic on both databases: a hold is placed only if ``balance - held`` still covers it
at the moment the row is written, whatever else runs concurrently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reapi.storage.tables import (
    Account,
    ApiKey,
    GatewayProcess,
    Hold,
    KeyDailySpend,
    LedgerEntry,
    UsageRecord,
)
from reapi.storage.types import utcnow


@dataclass(frozen=True, slots=True)
class AccountState:
    id: int
    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held


async def account(session: AsyncSession, user_id: int, workspace: str) -> AccountState | None:
    row = (
        await session.execute(
            select(Account.id, Account.balance, Account.held).where(
                Account.user_id == user_id, Account.workspace == workspace
            )
        )
    ).first()
    return AccountState(row[0], row[1], row[2]) if row else None


async def ensure_account(session: AsyncSession, user_id: int, workspace: str) -> AccountState:
    found = await account(session, user_id, workspace)
    if found is not None:
        return found
    await session.execute(
        insert(Account).values(user_id=user_id, workspace=workspace, balance=0, held=0)
    )
    found = await account(session, user_id, workspace)
    assert found is not None
    return found


async def place_hold(
    session: AsyncSession,
    *,
    account_id: int,
    request_id: str,
    amount: int,
    key_id: str,
    owner: str,
    daily_spent: int,
) -> str | None:
    """Reserve ``amount``; returns None on success, else which limit refused it."""
    placed = await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.balance - Account.held >= amount)
        .values(held=Account.held + amount)
    )
    if placed.rowcount != 1:  # type: ignore[attr-defined]
        return "balance"
    key_ok = await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(
                ApiKey.spend_limit.is_(None),
                ApiKey.spent + ApiKey.held + amount <= ApiKey.spend_limit,
            ),
            or_(
                ApiKey.daily_spend_limit.is_(None),
                ApiKey.held + amount + daily_spent <= ApiKey.daily_spend_limit,
            ),
        )
        .values(held=ApiKey.held + amount)
    )
    if key_ok.rowcount != 1:  # type: ignore[attr-defined]
        return "key"
    await session.execute(
        insert(Hold).values(
            request_id=request_id,
            account_id=account_id,
            key_id=key_id,
            amount=amount,
            owner=owner,
            created_at=utcnow(),
        )
    )
    return None


async def take_hold(session: AsyncSession, request_id: str) -> tuple[int, int, str | None] | None:
    """Remove a hold and undo its reservation; (account_id, amount, key_id), or None if it was
    already settled or released (which makes settlement idempotent)."""
    row = (
        await session.execute(
            select(Hold.account_id, Hold.amount, Hold.key_id).where(Hold.request_id == request_id)
        )
    ).first()
    if row is None:
        return None
    removed = await session.execute(delete(Hold).where(Hold.request_id == request_id))
    if removed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    account_id, amount, key_id = row
    await session.execute(
        update(Account).where(Account.id == account_id).values(held=Account.held - amount)
    )
    if key_id is not None:
        # Only keys with spend limits keep a running total of their holds (see hot_ledger).
        limited = or_(ApiKey.spend_limit.is_not(None), ApiKey.daily_spend_limit.is_not(None))
        await session.execute(
            update(ApiKey).where(ApiKey.id == key_id, limited).values(held=ApiKey.held - amount)
        )
    return account_id, amount, key_id


async def release_orphan(session: AsyncSession, request_id: str) -> None:
    """Release a hold whose gateway process died, and leave a record of the abandoned call."""
    found = await take_hold(session, request_id)
    if found is None:
        return
    account_id, _, key_id = found
    user_id = await session.scalar(select(Account.user_id).where(Account.id == account_id))
    exists = await session.scalar(select(func.count()).where(UsageRecord.request_id == request_id))
    if user_id is not None and not exists:
        await record_usage(
            session,
            request_id=request_id,
            user_id=user_id,
            key_id=key_id or "",
            endpoint="unknown",
            outcome="abandoned",
            status=0,
        )


async def post_entry(session: AsyncSession, account_id: int, amount: int, **fields: Any) -> int:
    """Move the balance by ``amount`` and append the ledger row; returns the new balance."""
    result = await session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(balance=Account.balance + amount)
        .returning(Account.balance)
    )
    balance_after = int(result.scalar_one())
    await session.execute(
        insert(LedgerEntry).values(
            account_id=account_id,
            amount=amount,
            balance_after=balance_after,
            created_at=utcnow(),
            **fields,
        )
    )
    return balance_after


async def totals(session: AsyncSession, account_id: int) -> tuple[int, int]:
    rows = await session.execute(
        select(LedgerEntry.kind, func.coalesce(func.sum(LedgerEntry.amount), 0))
        .where(LedgerEntry.account_id == account_id)
        .group_by(LedgerEntry.kind)
    )
    sums = {kind: int(total) for kind, total in rows}
    return sums.get("credit", 0), -(sums.get("charge", 0) + sums.get("refund", 0))


async def key_daily_spent(session: AsyncSession, key_id: str, day: str) -> int:
    value = await session.scalar(
        select(KeyDailySpend.amount).where(KeyDailySpend.key_id == key_id, KeyDailySpend.day == day)
    )
    return int(value or 0)


async def record_usage(session: AsyncSession, **fields: Any) -> None:
    await session.execute(insert(UsageRecord).values(created_at=utcnow(), **fields))


async def usage(
    session: AsyncSession,
    *,
    user_id: int | None = None,
    key_id: str | None = None,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> Sequence[UsageRecord]:
    query = select(UsageRecord)
    if user_id is not None:
        query = query.where(UsageRecord.user_id == user_id)
    if key_id is not None:
        query = query.where(UsageRecord.key_id == key_id)
    if model is not None:
        query = query.where(UsageRecord.model == model)
    if since is not None:
        query = query.where(UsageRecord.created_at >= since)
    if until is not None:
        query = query.where(UsageRecord.created_at < until)
    query = query.order_by(UsageRecord.created_at.desc()).limit(limit)
    return (await session.execute(query)).scalars().all()


async def heartbeat(session: AsyncSession, owner: str) -> None:
    now = utcnow()
    updated = await session.execute(
        update(GatewayProcess).where(GatewayProcess.owner == owner).values(heartbeat_at=now)
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        await session.execute(
            insert(GatewayProcess).values(owner=owner, started_at=now, heartbeat_at=now)
        )


async def forget_process(session: AsyncSession, owner: str) -> None:
    await session.execute(delete(GatewayProcess).where(GatewayProcess.owner == owner))


async def orphaned_holds(session: AsyncSession, stale_before: datetime) -> Sequence[str]:
    """Holds whose owner is gone: no process row, or a heartbeat older than ``stale_before``."""
    live = select(GatewayProcess.owner).where(GatewayProcess.heartbeat_at >= stale_before)
    rows = await session.execute(select(Hold.request_id).where(Hold.owner.not_in(live)))
    return [r[0] for r in rows]


async def old_holds(
    session: AsyncSession, placed_before: datetime
) -> Sequence[tuple[str, datetime]]:
    """Holds placed before ``placed_before``, oldest first: (request id, placed at)."""
    rows = await session.execute(
        select(Hold.request_id, Hold.created_at)
        .where(Hold.created_at < placed_before)
        .order_by(Hold.created_at)
    )
    return [(str(r[0]), r[1]) for r in rows]


async def forget_stale_processes(session: AsyncSession, stale_before: datetime) -> None:
    await session.execute(delete(GatewayProcess).where(GatewayProcess.heartbeat_at < stale_before))


async def ledger_mismatches(session: AsyncSession) -> list[tuple[int, int, int, int, int]]:
    """Accounts whose balance is not the sum of their ledger, or whose held is not the sum of
    their holds: (account_id, balance, ledger_sum, held, holds_sum)."""
    ledger_sum = (
        select(
            LedgerEntry.account_id, func.coalesce(func.sum(LedgerEntry.amount), 0).label("total")
        )
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    holds_sum = (
        select(Hold.account_id, func.coalesce(func.sum(Hold.amount), 0).label("total"))
        .group_by(Hold.account_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Account.id,
            Account.balance,
            func.coalesce(ledger_sum.c.total, 0),
            Account.held,
            func.coalesce(holds_sum.c.total, 0),
        )
        .outerjoin(ledger_sum, ledger_sum.c.account_id == Account.id)
        .outerjoin(holds_sum, holds_sum.c.account_id == Account.id)
        .where(
            or_(
                Account.balance != func.coalesce(ledger_sum.c.total, 0),
                Account.held != func.coalesce(holds_sum.c.total, 0),
            )
        )
    )
    return [tuple(int(v) for v in row) for row in rows]  # type: ignore[misc]


async def charges_per_request(session: AsyncSession) -> list[tuple[str, int]]:
    rows = await session.execute(
        select(LedgerEntry.request_id, func.count())
        .where(and_(LedgerEntry.kind == "charge", LedgerEntry.request_id.is_not(None)))
        .group_by(LedgerEntry.request_id)
        .having(func.count() > 1)
    )
    return [(str(r[0]), int(r[1])) for r in rows]
