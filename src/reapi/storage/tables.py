"""Table definitions (SQLAlchemy 2 typed declarative). Schema changes go through Alembic only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from reapi.storage.types import UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), unique=True)
    groups: Mapped[list[str]] = mapped_column(default=lambda: ["default"])
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_user_workspace", "user_id", "workspace"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    workspace: Mapped[str] = mapped_column(String(16), default="chat")
    name: Mapped[str] = mapped_column(String(128), default="")
    # Only a SHA-256 of the secret is kept; ``hint`` is its prefix and last four characters.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(32))
    default_group: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    allowed_models: Mapped[list[str] | None] = mapped_column(default=None)
    # Spend limits in units; spent/held are kept beside them so the check is one statement.
    spend_limit: Mapped[int | None] = mapped_column(BigInteger, default=None)
    daily_spend_limit: Mapped[int | None] = mapped_column(BigInteger, default=None)
    spent: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)


class Account(Base):
    """A user's money in one workspace. ``balance`` is always the sum of the account's ledger;
    ``held`` the sum of its open holds. Both in integer units (see reapi.money)."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("user_id", "workspace"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    workspace: Mapped[str] = mapped_column(String(16))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)


class Hold(Base):
    """Money reserved for one call in flight. ``owner`` is the gateway process that placed it;
    a hold whose owner stopped heartbeating is released by recovery."""

    __tablename__ = "holds"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    amount: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GatewayProcess(Base):
    """A running gateway process, for telling live holds from orphaned ones."""

    __tablename__ = "gateway_processes"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    """Append-only: every balance change, with what priced it."""

    __tablename__ = "ledger"
    __table_args__ = (
        UniqueConstraint("request_id", "kind", name="uq_ledger_request_kind"),
        Index("ix_ledger_account_created", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))  # credit | charge | refund | adjustment
    amount: Mapped[int] = mapped_column(BigInteger)  # signed: a charge is negative
    balance_after: Mapped[int] = mapped_column(BigInteger)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    user_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    model: Mapped[str | None] = mapped_column(String(128), default=None)
    group: Mapped[str | None] = mapped_column("group_name", String(64), default=None)
    channel: Mapped[str | None] = mapped_column(String(128), default=None)
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    cached_tokens: Mapped[int] = mapped_column(default=0)
    cache_write_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    # Unit prices as applied (USD per 1M tokens, already times the group's price_ratio).
    prices: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageRecord(Base):
    """One row per authenticated call, billed or not."""

    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_user_created", "user_id", "created_at"),
        Index("ix_usage_key_created", "key_id", "created_at"),
        Index("ix_usage_model_created", "model", "created_at"),
    )

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    key_id: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(128), default=None)
    group: Mapped[str | None] = mapped_column("group_name", String(64), default=None)
    channel: Mapped[str | None] = mapped_column(String(128), default=None)
    stream: Mapped[bool] = mapped_column(default=False)
    status: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    cached_tokens: Mapped[int] = mapped_column(default=0)
    cache_write_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    usage_estimated: Mapped[bool] = mapped_column(default=False)
    cost: Mapped[int] = mapped_column(BigInteger, default=0)
    prices: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    latency_ms: Mapped[int] = mapped_column(default=0)
    ttfb_ms: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KeyDailySpend(Base):
    __tablename__ = "key_daily_spend"

    key_id: Mapped[str] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # UTC date, YYYY-MM-DD
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
