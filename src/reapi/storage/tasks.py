"""The SQL of the task gateway: admission, the task queue with leases, outcomes, webhooks and
media expiry.

Every function runs inside the caller's unit of work. Claims and terminal transitions are
conditional UPDATEs, so on both databases two workers can never both own a task, and a task can
reach ``completed`` or ``failed`` only once whatever races happen around it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reapi.storage.tables import Account
from reapi.storage.task_tables import Task


async def lock_if_covered(session: AsyncSession, account_id: int, amount: int) -> bool:
    """True, with the account row locked until commit, when ``balance - held`` covers
    ``amount``. The caller then posts the charge in the same transaction: nothing can spend
    the money between the check and the debit (PostgreSQL re-checks the condition after any
    concurrent writer commits; SQLite has one writer at a time)."""
    result = await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.balance - Account.held >= amount)
        .values(balance=Account.balance)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def add_task(session: AsyncSession, task: Task) -> None:
    session.add(task)
    await session.flush()


async def by_idempotency_key(session: AsyncSession, user_id: int, key: str) -> Task | None:
    result = await session.execute(
        select(Task).where(Task.user_id == user_id, Task.idempotency_key == key)
    )
    return result.scalar_one_or_none()


async def release_idempotency_key(session: AsyncSession, task_id: str) -> None:
    """Free an expired key for reuse; the old task keeps everything else."""
    await session.execute(update(Task).where(Task.id == task_id).values(idempotency_key=None))


async def get(session: AsyncSession, task_id: str, user_id: int | None = None) -> Task | None:
    # populate_existing: a row re-read after a conditional UPDATE must show the new values.
    query = select(Task).where(Task.id == task_id).execution_options(populate_existing=True)
    if user_id is not None:
        query = query.where(Task.user_id == user_id)
    return (await session.execute(query)).scalar_one_or_none()


async def list_of_user(
    session: AsyncSession,
    user_id: int,
    *,
    status: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> Sequence[Task]:
    """Newest first; ``after`` is the (created_at, id) of the last task of the previous page."""
    query = select(Task).where(Task.user_id == user_id)
    if status is not None:
        query = query.where(Task.status == status)
    if after is not None:
        created, task_id = after
        query = query.where(
            or_(Task.created_at < created, and_(Task.created_at == created, Task.id < task_id))
        )
    query = query.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit)
    return (await session.execute(query)).scalars().all()


def _claimable(now: datetime, channels: Sequence[str]) -> Any:
    return and_(
        Task.status == "processing",
        Task.next_attempt_at <= now,
        or_(Task.lease_until.is_(None), Task.lease_until < now),
        # A worker only takes tasks for channels it knows (configs differ during a rolling
        # deploy); any worker may end a task past its deadline.
        or_(Task.channel.in_(channels), Task.deadline <= now),
    )


async def claim(
    session: AsyncSession,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    channels: Sequence[str],
    exclude: Collection[str] = (),
) -> Sequence[Task]:
    """Lease up to ``limit`` due tasks to ``owner``, except those in ``exclude``. A task whose
    lease ran out (its worker died or stalled) is due again. PostgreSQL skips rows other
    workers are claiming; the conditional UPDATE is what guarantees one owner on either
    database."""
    due = _claimable(now, channels)
    if exclude:
        due = and_(due, Task.id.not_in(exclude))
    candidates = select(Task.id).where(due).order_by(Task.next_attempt_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = [row[0] for row in await session.execute(candidates)]
    claimed: list[Task] = []
    for task_id in ids:
        result = await session.execute(
            update(Task)
            .where(Task.id == task_id, _claimable(now, channels))
            .values(lease_owner=owner, lease_until=lease_until)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            found = await get(session, task_id)
            if found is not None:
                claimed.append(found)
    return claimed


async def update_owned(session: AsyncSession, task_id: str, owner: str, **values: Any) -> bool:
    """Write to a task this worker still leases; False when the lease was lost or the task
    already ended, in which case the caller must stop working on it."""
    result = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.lease_owner == owner, Task.status == "processing")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def end(session: AsyncSession, task_id: str, owner: str | None, **values: Any) -> bool:
    """Move a processing task to its terminal status. True exactly once per task: the caller
    posts the refund of a failure in the same transaction only when this returns True."""
    query = update(Task).where(Task.id == task_id, Task.status == "processing")
    if owner is not None:
        query = query.where(Task.lease_owner == owner)
    result = await session.execute(
        query.values(lease_owner=None, lease_until=None, **values).execution_options(
            synchronize_session=False
        )
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def claim_callbacks(
    session: AsyncSession, now: datetime, retry_at: datetime, limit: int
) -> Sequence[Task]:
    """Take due webhook deliveries; moving ``callback_next_at`` forward is the lease, so a
    sender that dies mid-delivery leaves the callback due again at ``retry_at``."""
    query = (
        select(Task.id)
        .where(Task.callback_state == "pending", Task.callback_next_at <= now)
        .order_by(Task.callback_next_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    taken: list[Task] = []
    for (task_id,) in (await session.execute(query)).all():
        result = await session.execute(
            update(Task)
            .where(
                Task.id == task_id,
                Task.callback_state == "pending",
                Task.callback_next_at <= now,
            )
            .values(callback_next_at=retry_at, callback_attempts=Task.callback_attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            found = await get(session, task_id)
            if found is not None:
                taken.append(found)
    return taken


async def set_callback(session: AsyncSession, task_id: str, **values: Any) -> None:
    await session.execute(
        update(Task)
        .where(Task.id == task_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def expired_media(session: AsyncSession, now: datetime, limit: int) -> Sequence[str]:
    rows = await session.execute(
        select(Task.id)
        .where(Task.media_expires_at < now)
        .order_by(Task.media_expires_at)
        .limit(limit)
    )
    return [row[0] for row in rows]


async def forget_media(session: AsyncSession, task_id: str) -> None:
    await session.execute(
        update(Task)
        .where(Task.id == task_id)
        .values(media_expires_at=None)
        .execution_options(synchronize_session=False)
    )
