"""Balances, holds and settlement: the money side of every chat call.

Life of a call: ``admit`` reserves the worst case (prompt bound + max_tokens at the model's
rates, optionally capped) against ``balance - held`` in one conditional UPDATE, so concurrent
calls can never together spend more than the balance. ``close`` runs exactly once per call, in
the request's own flow, shielded from cancellation: it removes the hold and, for a call that
produced an answer, posts one ledger charge keyed by the request id; for a failed call it only
releases. Each call also leaves a usage record. A process that dies with calls in flight leaves
holds whose owner stops heartbeating; any live process releases them (``recover_orphans``).

Billing rules per outcome (docs/billing.md): ``ok`` is charged from the upstream's usage (or,
if it sent none, from the documented estimate); ``client_gone`` is charged for the prompt and
the output produced until the gateway cancelled the upstream; every other outcome is free.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reapi.config import ChatModel, Group
from reapi.errors import InsufficientBalance
from reapi.money import format_usd, usd_to_units
from reapi.protocols.output import OutputBound
from reapi.protocols.usage import Usage
from reapi.services import estimate
from reapi.services.calls import CallRecord
from reapi.services.keys import AccountError, Principal
from reapi.services.limits import Limiter, Limits, LimitTicket
from reapi.services.pricing import Rates
from reapi.storage import accounts, ledger
from reapi.storage.db import Database
from reapi.storage.hot_ledger import HoldOrder, HotLedger, SettleOrder
from reapi.storage.tables import UsageRecord
from reapi.storage.types import utcnow

log = logging.getLogger("reapi.billing")

CHARGED_OUTCOMES = frozenset({"ok", "client_gone"})
# Amounts are signed 64-bit integers of 1e-9 USD in the database (about 9.2e9 USD): keep every
# entry and balance well inside that, and say so instead of overflowing.
MAX_ENTRY = 10**9 * 10**9  # one billion USD
MAX_BALANCE = 4 * MAX_ENTRY
# A settlement the store refused is retried SETTLE_ATTEMPTS times, backing off up to
# MAX_RETRY_DELAY seconds (about five minutes in all), before the hold is only released.
SETTLE_ATTEMPTS = 12
MODEL_NAME_CHARS = 128
MAX_RETRY_DELAY = 30.0
DRAIN_SECONDS = 10.0


@dataclass(slots=True)
class Ticket:
    """What ``admit`` reserved for one call, and what ``close`` needs to settle it."""

    user_id: int
    key_id: str
    rates: Rates
    prompt_bound: int
    prompt_chars: int
    output: OutputBound
    # More input than this no upstream can have read: the model's context window per answer.
    max_prompt: int
    key_limited: bool = False
    # The most the call may be charged (prompt bound and output bound at the model's rates);
    # the hold is this, or less under a hold cap.
    worst: int = 0
    hold: int = 0
    limit: LimitTicket | None = None
    cost: int = 0


@dataclass(frozen=True, slots=True)
class UsageQuery:
    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    key_id: str | None = None
    limit: int = 1000


def usage_json(record: UsageRecord) -> dict[str, Any]:
    """The public shape of a usage record (CLI --json, admin and self-service APIs)."""
    return {
        "request_id": record.request_id,
        "created_at": record.created_at.isoformat(),
        "key_id": record.key_id,
        "endpoint": record.endpoint,
        "model": record.model,
        "group": record.group,
        "channel": record.channel,
        "stream": record.stream,
        "status": record.status,
        "outcome": record.outcome,
        "error_code": record.error_code,
        "prompt_tokens": record.prompt_tokens,
        "cached_tokens": record.cached_tokens,
        "cache_write_tokens": record.cache_write_tokens,
        "completion_tokens": record.completion_tokens,
        "usage_estimated": record.usage_estimated,
        "cost": format_usd(record.cost),
        "prices": record.prices,
        "latency_ms": record.latency_ms,
        "ttfb_ms": record.ttfb_ms,
    }


@dataclass(frozen=True, slots=True)
class Balance:
    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held


class BillingService:
    def __init__(
        self,
        db: Database,
        limiter: Limiter,
        *,
        node_id: str,
        hold_cap: Decimal | None = None,
        owner_timeout: float = 30.0,
        hold_max_age: float = 7200.0,
        settle_retry_delay: float = 0.5,
        settle_attempts: int = SETTLE_ATTEMPTS,
        hot: HotLedger | None = None,
    ) -> None:
        self._db = db
        self._hot = hot
        self._limiter = limiter
        self.owner = f"{node_id}/{secrets.token_hex(6)}"
        self._hold_cap = usd_to_units(hold_cap) if hold_cap is not None else None
        self._owner_timeout = owner_timeout
        self._hold_max_age = hold_max_age
        self._retry_delay = settle_retry_delay
        self._settle_attempts = settle_attempts
        self._pending: set[asyncio.Future[Any]] = set()

    async def admit(
        self,
        call: CallRecord,
        principal: Principal,
        model: ChatModel,
        group: Group,
        body: dict[str, object],
        output: OutputBound,
    ) -> Ticket:
        bound, chars = estimate.prompt_bound(body, model.image_tokens)
        ticket = Ticket(
            principal.user_id,
            principal.key_id,
            Rates.for_model(model, group.price_ratio),
            bound,
            chars,
            output,
            model.context_window * output.choices,
            principal.spend_limited,
        )
        call.billing = ticket
        limits = Limits(group.rpm, group.tpm, group.max_concurrency)
        if limits.any:
            ticket.limit = await self._limiter.admit(
                f"{principal.user_id}:{group.name}", limits, bound + output.tokens, call.request_id
            )
        if ticket.rates.free:
            return ticket
        worst = ticket.worst = ticket.rates.worst_case(bound, output.tokens)
        ticket.hold = min(worst, self._hold_cap) if self._hold_cap is not None else worst
        if principal.spend_limited:
            await self._hold_with_key_limits(call, principal, ticket, worst)
            return ticket
        assert self._hot is not None, "the gateway's billing needs its hot ledger"
        refused = await self._hot.hold(
            HoldOrder(call.request_id, principal.user_id, principal.key_id, ticket.hold, self.owner)
        )
        if refused is not None:
            ticket.hold = 0
            raise self._insufficient(worst, refused)
        return ticket

    async def _hold_with_key_limits(
        self, call: CallRecord, principal: Principal, ticket: Ticket, worst: int
    ) -> None:
        """The general path, for keys with spend limits: balance and key checked in one
        transaction. Keys without limits take the hot ledger's single statement instead."""
        async with self._db.session() as session:
            account = await ledger.account(session, principal.user_id, "chat")
            if account is None:
                ticket.hold = 0
                raise self._insufficient(worst, 0)
            daily = 0
            if principal.daily_limited:
                daily = await ledger.key_daily_spent(session, principal.key_id, _today())
            refused = await ledger.place_hold(
                session,
                account_id=account.id,
                request_id=call.request_id,
                amount=ticket.hold,
                key_id=principal.key_id,
                owner=self.owner,
                daily_spent=daily,
            )
            if refused is not None:
                ticket.hold = 0
            if refused == "balance":
                raise self._insufficient(worst, account.available)
            if refused == "key":
                raise InsufficientBalance(
                    f"This key's spend limit does not cover this call (it may cost up to "
                    f"${format_usd(worst)}). Raise the key's limit or use another key.",
                    code="key_spend_limit",
                )

    def _insufficient(self, worst: int, available: int) -> InsufficientBalance:
        shown = min(worst, self._hold_cap) if self._hold_cap is not None else worst
        return InsufficientBalance(
            f"Insufficient balance: this call needs ${format_usd(shown)} reserved (prompt and "
            f"max_tokens at the model's rates), and ${format_usd(max(available, 0))} is "
            "available. Top up, or lower max_tokens.",
        )

    async def close(self, call: CallRecord) -> int:
        """Settle or release, and record the call. Idempotent; survives cancellation."""
        if call.closed:
            return call.billing.cost if call.billing else 0
        call.closed = True
        task = asyncio.ensure_future(self._close(call))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return await asyncio.shield(task)

    async def _close(self, call: CallRecord) -> int:
        ticket = call.billing
        if call.user_id is None:
            return 0
        usage = _billable_usage(call, ticket) if ticket is not None else None
        cost = ticket.rates.cost(usage) if ticket is not None and usage is not None else 0
        if ticket is not None and cost > ticket.worst:
            # The upstream's counts were within physical bounds yet cost more than the worst
            # case the call reserved (a prompt the upstream padded beyond the gateway's bound):
            # the customer is never charged more than the call could hold.
            log.warning(
                "request %s: usage costs %s USD, more than the %s USD its bounds allow; "
                "charged the bound",
                call.request_id,
                format_usd(cost),
                format_usd(ticket.worst),
            )
            call.usage_replaced = call.usage_replaced or "cost_capped"
            cost = ticket.worst
        if usage is not None:
            call.usage = usage
        elif ticket is not None and _doubt(call.usage, ticket) not in (None, "missing"):
            call.usage = None  # never record numbers the upstream made up
        recorded = call.usage or Usage()
        # A name longer than its column (refused at the edge, but the books must never depend
        # on that) would make the store refuse the whole settlement.
        model = call.model[:MODEL_NAME_CHARS] if call.model else call.model
        prices = ticket.rates.as_record() if ticket is not None else None
        order = SettleOrder(
            request_id=call.request_id,
            user_id=call.user_id,
            key_id=call.key_id or "",
            cost=cost,
            day=_today(),
            had_hold=bool(ticket and ticket.hold),
            key_limited=bool(ticket and ticket.key_limited),
            ledger={
                "model": model,
                "group_name": call.group,
                "channel": call.channel,
                "prompt_tokens": recorded.prompt_tokens,
                "cached_tokens": recorded.cached_tokens,
                "cache_write_tokens": recorded.cache_write_tokens,
                "completion_tokens": recorded.completion_tokens,
                "prices": prices,
                "note": "" if call.outcome == "ok" else call.outcome,
            },
            usage={
                "endpoint": call.endpoint,
                "model": model,
                "group_name": call.group,
                "channel": call.channel,
                "stream": call.stream,
                "status": call.status,
                "outcome": call.outcome,
                "error_code": call.error_code,
                "prompt_tokens": recorded.prompt_tokens,
                "cached_tokens": recorded.cached_tokens,
                "cache_write_tokens": recorded.cache_write_tokens,
                "completion_tokens": recorded.completion_tokens,
                "usage_estimated": call.usage_estimated,
                "prices": prices,
                "latency_ms": int(call.elapsed() * 1000),
                "ttfb_ms": None if call.ttfb is None else int(call.ttfb * 1000),
            },
        )
        try:
            balance_after = await self._settle(order)
        finally:
            if ticket is not None and ticket.limit is not None:
                await self._limiter.finish(ticket.limit, usage.total_tokens if usage else 0)
        if balance_after is not None and balance_after < 0:
            log.warning(
                "request %s left user %s in debt: %s USD",
                call.request_id,
                call.user_id,
                format_usd(balance_after),
            )
        if ticket is not None:
            ticket.cost = cost
        call.cost = cost
        return cost

    async def _settle(self, order: SettleOrder) -> int | None:
        """Settle now, or, if the store fails, keep trying in the background: a hold must never
        outlive its call. The answer still goes out (its hold covers the charge)."""
        assert self._hot is not None, "the gateway's billing needs its hot ledger"
        try:
            return await self._hot.settle(order)
        except Exception:
            log.exception("settling %s failed; retrying in the background", order.request_id)
        task = asyncio.ensure_future(self._settle_later(order))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return None

    async def _settle_later(self, order: SettleOrder) -> None:
        """Retry with backoff for a few minutes (a store that is restarting, a lost
        connection), then give up on the charge and only release the hold: a call the store
        would not record is free, never stuck."""
        assert self._hot is not None
        delay = self._retry_delay
        for _ in range(self._settle_attempts):
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)
            try:
                await self._hot.settle(order)
            except Exception as exc:
                log.warning("settling %s failed again: %s", order.request_id, exc)
            else:
                log.warning("settled %s after retrying", order.request_id)
                return
        release = _release_only(order)
        while True:
            try:
                await self._hot.settle(release)
            except Exception as exc:
                log.error("releasing the hold of %s failed: %s", order.request_id, exc)
                await asyncio.sleep(delay)
            else:
                log.error(
                    "request %s could not be charged %s USD: the store refused its settlement; "
                    "its hold was released and the call is free",
                    order.request_id,
                    format_usd(order.cost),
                )
                return

    async def drain(self) -> None:
        """Wait for settlements still running (shutdown). Retries still failing after
        DRAIN_SECONDS are abandoned: their holds are released by recovery, the calls free."""
        if self._pending:
            _, stuck = await asyncio.wait(self._pending, timeout=DRAIN_SECONDS)
            for task in stuck:
                task.cancel()

    # Operator side -----------------------------------------------------------------------

    async def credit(
        self,
        user_name: str,
        amount: int,
        *,
        note: str = "",
        workspace: str = "chat",
        kind: str = "credit",
    ) -> int:
        if amount <= 0 and kind == "credit":
            raise AccountError("a credit must be a positive amount")
        if abs(amount) > MAX_ENTRY:
            raise AccountError(
                f"one ledger entry can move at most {format_usd(MAX_ENTRY)} USD; split it"
            )
        async with self._db.session() as session:
            user = await accounts.user_by_name(session, user_name)
            if user is None:
                raise AccountError(f"no user named {user_name!r}")
            account = await ledger.ensure_account(session, user.id, workspace)
            if abs(account.balance + amount) > MAX_BALANCE:
                raise AccountError(
                    f"the balance would exceed {format_usd(MAX_BALANCE)} USD, "
                    "the most an account holds"
                )
            return await ledger.post_entry(
                session, account.id, amount, kind=kind, user_id=user.id, note=note[:500]
            )

    async def balance(self, user_name: str, workspace: str = "chat") -> Balance:
        async with self._db.session() as session:
            user = await accounts.user_by_name(session, user_name)
            if user is None:
                raise AccountError(f"no user named {user_name!r}")
            account = await ledger.account(session, user.id, workspace)
        return Balance(account.balance, account.held) if account else Balance(0, 0)

    async def usage(self, user_name: str, query: UsageQuery) -> Sequence[UsageRecord]:
        async with self._db.session() as session:
            user = await accounts.user_by_name(session, user_name)
            if user is None:
                raise AccountError(f"no user named {user_name!r}")
            return await self.usage_of(user.id, query, session)

    async def usage_of(
        self, user_id: int, query: UsageQuery, session: AsyncSession | None = None
    ) -> Sequence[UsageRecord]:
        if session is None:
            async with self._db.session() as own:
                return await self.usage_of(user_id, query, own)
        return await ledger.usage(
            session,
            user_id=user_id,
            key_id=query.key_id,
            model=query.model,
            since=query.since,
            until=query.until,
            limit=query.limit,
        )

    async def totals_of(self, user_id: int, workspace: str = "chat") -> tuple[int, int]:
        """(everything credited, everything charged net of refunds) for the user's account."""
        async with self._db.session() as session:
            account = await ledger.account(session, user_id, workspace)
            if account is None:
                return 0, 0
            return await ledger.totals(session, account.id)

    async def balance_of(self, user_id: int, workspace: str = "chat") -> Balance:
        async with self._db.session() as session:
            account = await ledger.account(session, user_id, workspace)
        return Balance(account.balance, account.held) if account else Balance(0, 0)

    # Liveness and recovery ---------------------------------------------------------------

    async def heartbeat(self) -> None:
        async with self._db.session() as session:
            await ledger.heartbeat(session, self.owner)

    async def recover_orphans(self) -> int:
        """Release holds of processes that stopped heartbeating (crashed or killed)."""
        stale_before = utcnow() - timedelta(seconds=self._owner_timeout)
        async with self._db.session() as session:
            orphans = await ledger.orphaned_holds(session, stale_before)
        for request_id in orphans:
            async with self._db.session() as session:
                await ledger.release_orphan(session, request_id)
        if orphans:
            log.warning("released %d holds left by stopped gateway processes", len(orphans))
        async with self._db.session() as session:
            await ledger.forget_stale_processes(session, stale_before)
        return len(orphans)

    async def retire(self) -> None:
        async with self._db.session() as session:
            await ledger.forget_process(session, self.owner)

    async def verify(self) -> list[str]:
        stale_before = utcnow() - timedelta(seconds=self._owner_timeout)
        problems: list[str] = []
        async with self._db.session() as session:
            for account_id, balance, ledger_sum, held, holds_sum in await ledger.ledger_mismatches(
                session
            ):
                if balance != ledger_sum:
                    problems.append(
                        f"account {account_id}: balance {format_usd(balance)} but its ledger "
                        f"sums to {format_usd(ledger_sum)}"
                    )
                if held != holds_sum:
                    problems.append(
                        f"account {account_id}: held {format_usd(held)} but its holds sum to "
                        f"{format_usd(holds_sum)}"
                    )
            orphans = set(await ledger.orphaned_holds(session, stale_before))
            for request_id in sorted(orphans):
                problems.append(f"hold {request_id} is orphaned: its gateway process is gone")
            # No call lives this long: a hold this old is one that settlement left behind.
            too_old = utcnow() - timedelta(seconds=self._hold_max_age)
            for request_id, placed in await ledger.old_holds(session, too_old):
                if request_id not in orphans:
                    problems.append(
                        f"hold {request_id} was placed at {placed:%Y-%m-%d %H:%M:%S} UTC, more "
                        f"than {self._hold_max_age:g} s ago, and is still open"
                    )
            for request_id, count in await ledger.charges_per_request(session):
                problems.append(f"request {request_id} was charged {count} times")
        return problems


def _billable_usage(call: CallRecord, ticket: Ticket) -> Usage | None:
    """What a call is charged for, or None for a free outcome.

    The upstream's own counts when they are believable; otherwise (missing, malformed, or
    beyond what the call could physically have used) the gateway's estimate, which is never
    more than the bounds the call held for. docs/billing.md states the rule.
    """
    if call.outcome not in CHARGED_OUTCOMES:
        return None
    reported = call.usage
    doubt = _doubt(reported, ticket)
    if doubt is None and call.outcome == "ok":
        return reported
    if doubt is not None and (call.outcome == "ok" or doubt != "missing"):
        call.usage_replaced = doubt
        log.warning(
            "request %s: the upstream's usage is %s; billed from the gateway's estimate",
            call.request_id,
            doubt.replace("_", " "),
        )
    trusted = reported if doubt is None else None
    call.usage_estimated = True
    prompt = (
        trusted.prompt_tokens
        if trusted and trusted.prompt_tokens
        else min(estimate.fair_tokens(ticket.prompt_chars), ticket.prompt_bound)
    )
    produced = estimate.fair_tokens(call.output_chars)
    reported_completion = trusted.completion_tokens if trusted else 0
    completion = min(max(reported_completion, produced), ticket.output.tokens)
    cached = trusted.cached_tokens if trusted else 0
    written = trusted.cache_write_tokens if trusted else 0
    return Usage(prompt, completion, cached, written)


def _doubt(reported: Usage | None, ticket: Ticket) -> str | None:
    """Why the upstream's usage cannot be believed, or None if it can."""
    if reported is None:
        return "missing"
    if reported.malformed:
        return "malformed"
    if (
        reported.completion_tokens > ticket.output.tokens
        or reported.prompt_tokens > ticket.max_prompt
    ):
        return "out_of_bounds"
    return None


def _release_only(order: SettleOrder) -> SettleOrder:
    """The same call settled as free, with nothing from the upstream recorded."""
    zeros = dict.fromkeys(
        ("prompt_tokens", "cached_tokens", "cache_write_tokens", "completion_tokens"), 0
    )
    return replace(
        order,
        cost=0,
        ledger={**order.ledger, **zeros},
        usage={**order.usage, **zeros, "outcome": "settle_failed"},
    )


def _today() -> str:
    return utcnow().date().isoformat()
