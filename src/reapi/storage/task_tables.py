"""The task gateway's table: one row per submitted task, carrying its whole life.

A row is the queue entry (``next_attempt_at``, the lease), the record of the upstream job (so a
restarted worker polls instead of submitting again), the outcome shown to the client and the
state of its webhook. Schema changes go through Alembic only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from reapi.storage.tables import Base
from reapi.storage.types import utcnow


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_claim", "status", "next_attempt_at"),
        Index("ix_tasks_user_created", "user_id", "created_at"),
        Index("ix_tasks_callback", "callback_state", "callback_next_at"),
        Index("ix_tasks_media_expires", "media_expires_at"),
        # NULL keys are distinct on both databases, so only opted-in submits are constrained.
        UniqueConstraint("user_id", "idempotency_key", name="uq_tasks_user_idempotency"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    key_id: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(8))
    # processing | completed | failed: what clients see.
    status: Mapped[str] = mapped_column(String(16), default="processing")
    # queued -> submitting -> running: where the worker is. ``submitting`` is written before
    # the create call, so a task found in it was interrupted mid-call and is never resubmitted.
    phase: Mapped[str] = mapped_column(String(16), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column()
    price: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str | None] = mapped_column(String(128), default=None)
    upstream: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    deadline: Mapped[datetime] = mapped_column()
    output: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # Where the client reached the gateway, for absolute media URLs when no public_url is set.
    origin: Mapped[str | None] = mapped_column(String(255), default=None)
    callback_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    # pending | delivered | failed; None when no callback was asked for.
    callback_state: Mapped[str | None] = mapped_column(String(16), default=None)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_next_at: Mapped[datetime | None] = mapped_column(default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    media_expires_at: Mapped[datetime | None] = mapped_column(default=None)
