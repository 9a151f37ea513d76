"""The two writes every billed call makes, placing a hold and settling it, done fast.

Both run on every chat call, so they bypass the ORM: through SQLAlchemy's async adapters a
statement costs a thread hop (aiosqlite) or a greenlet switch (asyncpg), and the ~15 statements
of a hold and a settlement cost milliseconds. Here:

- **SQLite**: one writer thread owns one connection. It takes every operation waiting in its
  queue, runs them in one ``BEGIN IMMEDIATE`` transaction (each inside a savepoint, so one
  failure cannot undo the others), commits once, and wakes all their callers with one callback:
  group commit, which is also the "one writer" SQLite wants.
- **PostgreSQL**: each operation is one statement (data-modifying CTEs), so one round trip, on a
  plain asyncpg pool.

The statements do exactly what ``storage.ledger`` does in steps (and the tests hold both to the
same books): the conditional ``UPDATE`` that refuses a hold the available balance cannot cover,
the hold row owned by this process, and at settlement the hold's removal, the charge, the
ledger row, the key's spend and the usage record, all in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy.engine import make_url

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite


@dataclass(frozen=True, slots=True)
class HoldOrder:
    request_id: str
    user_id: int
    key_id: str
    amount: int
    owner: str
    # Only a key with spend limits needs its own running totals (held, spent, per day).
    key_limited: bool = False
    workspace: str = "chat"


@dataclass(frozen=True, slots=True)
class SettleOrder:
    """Remove the call's hold (if any), charge ``cost`` (if any) and record the call."""

    request_id: str
    user_id: int
    key_id: str
    cost: int
    day: str
    had_hold: bool
    ledger: dict[str, Any]  # model, group, channel, token counts, prices, note
    usage: dict[str, Any]  # the usage_records row (minus request_id, user_id, key_id, cost)
    key_limited: bool = False
    workspace: str = "chat"


class HotLedger(Protocol):
    async def hold(self, order: HoldOrder) -> int | None:
        """Place the hold; None on success, else the available balance that refused it."""
        ...

    async def settle(self, order: SettleOrder) -> int | None:
        """The balance after the charge (None when nothing was charged)."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


_LEDGER_COLUMNS = (
    "model",
    "group_name",
    "channel",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "prices",
    "note",
)
_USAGE_COLUMNS = (
    "endpoint",
    "model",
    "group_name",
    "channel",
    "stream",
    "status",
    "outcome",
    "error_code",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "usage_estimated",
    "prices",
    "latency_ms",
    "ttfb_ms",
)
_SQLITE_LEDGER = (
    "INSERT INTO ledger (account_id, kind, amount, balance_after, request_id, user_id, key_id, "
    "model, group_name, channel, prompt_tokens, cached_tokens, cache_write_tokens, "
    "completion_tokens, prices, note, created_at) "
    "VALUES (?, 'charge', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_USAGE = (
    "INSERT INTO usage_records (request_id, user_id, key_id, cost, endpoint, model, group_name, "
    "channel, stream, status, outcome, error_code, prompt_tokens, cached_tokens, "
    "cache_write_tokens, completion_tokens, usage_estimated, prices, latency_ms, ttfb_ms, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _values(row: dict[str, Any], columns: tuple[str, ...]) -> list[Any]:
    """The row's values in column order; JSON columns serialised."""
    return [_json(row.get(c)) if c == "prices" else row.get(c) for c in columns]


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


# SQLite ---------------------------------------------------------------------------------------


class SQLiteHotLedger:
    def __init__(self, path: str) -> None:
        self._path = path
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="reapi-ledger", daemon=True
        )
        self._thread.start()
        await ready

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def hold(self, order: HoldOrder) -> int | None:
        result: int | None = await self._submit(_sqlite_hold, order)
        return result

    async def settle(self, order: SettleOrder) -> int | None:
        result: int | None = await self._submit(_sqlite_settle, order)
        return result

    async def _submit(self, operation: Callable[[sqlite3.Cursor, Any], Any], order: Any) -> Any:
        assert self._loop is not None, "start() the ledger first"
        future = self._loop.create_future()
        self._queue.put((future, operation, order))
        # A caller cancelled meanwhile does not stop the operation; the billing service always
        # settles a call whose hold was requested, which removes such a hold again.
        return await future

    def _run(self, ready: asyncio.Future[None]) -> None:
        assert self._loop is not None
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=10000",
        ):
            connection.execute(f"PRAGMA {pragma}")
        self._loop.call_soon_threadsafe(_set_result, ready, None)
        cursor = connection.cursor()
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                batch = [item]
                # Give the event loop the GIL once before draining: requests it is serving
                # right now can join this commit instead of waiting for the next one.
                time.sleep(0)
                while len(batch) < 512:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self._queue.put(None)
                        break
                    batch.append(item)
                self._loop.call_soon_threadsafe(_resolve, self._execute(cursor, batch))
        finally:
            connection.close()

    @classmethod
    def _execute(
        cls, cursor: sqlite3.Cursor, batch: list[Any]
    ) -> list[tuple[Any, Any, BaseException | None]]:
        """Run the batch in one transaction. Should one operation fail, the batch is rolled
        back and every operation run again in a transaction of its own, so the others still
        land and only the failing one reports its error."""
        try:
            cursor.execute("BEGIN IMMEDIATE")
            results: list[tuple[Any, Any, BaseException | None]] = [
                (future, operation(cursor, order), None) for future, operation, order in batch
            ]
            cursor.execute("COMMIT")
            return results
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                cursor.execute("ROLLBACK")
            if len(batch) == 1:
                return [(batch[0][0], None, exc)]
        return [outcome for item in batch for outcome in cls._execute(cursor, [item])]


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _resolve(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


def _now_sqlite() -> str:
    return datetime.now(UTC).strftime(_SQLITE_TIME)


def _sqlite_hold(cur: sqlite3.Cursor, order: HoldOrder) -> int | None:
    row = cur.execute(
        "UPDATE accounts SET held = held + ? WHERE user_id = ? AND workspace = ? "
        "AND balance - held >= ? RETURNING id",
        (order.amount, order.user_id, order.workspace, order.amount),
    ).fetchone()
    if row is None:
        available = cur.execute(
            "SELECT balance - held FROM accounts WHERE user_id = ? AND workspace = ?",
            (order.user_id, order.workspace),
        ).fetchone()
        return int(available[0]) if available else 0
    if order.key_limited:
        cur.execute(
            "UPDATE api_keys SET held = held + ? WHERE id = ?", (order.amount, order.key_id)
        )
    cur.execute(
        "INSERT INTO holds (request_id, account_id, key_id, amount, owner, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (order.request_id, row[0], order.key_id, order.amount, order.owner, _now_sqlite()),
    )
    return None


def _sqlite_settle(cur: sqlite3.Cursor, order: SettleOrder) -> int | None:
    now = _now_sqlite()
    held = 0
    if order.had_hold:
        removed = cur.execute(
            "DELETE FROM holds WHERE request_id = ? RETURNING amount", (order.request_id,)
        ).fetchone()
        held = int(removed[0]) if removed else 0
    balance_after: int | None = None
    if held or order.cost:
        row = cur.execute(
            "UPDATE accounts SET held = held - ?, balance = balance - ? "
            "WHERE user_id = ? AND workspace = ? RETURNING id, balance",
            (held, order.cost, order.user_id, order.workspace),
        ).fetchone()
        if order.key_limited:
            cur.execute(
                "UPDATE api_keys SET held = held - ?, spent = spent + ? WHERE id = ?",
                (held, order.cost, order.key_id),
            )
        if order.cost and row is not None:
            balance_after = int(row[1])
            cur.execute(
                _SQLITE_LEDGER,
                [
                    row[0],
                    -order.cost,
                    balance_after,
                    order.request_id,
                    order.user_id,
                    order.key_id,
                    *_values(order.ledger, _LEDGER_COLUMNS),
                    now,
                ],
            )
            if order.key_limited:
                cur.execute(
                    "INSERT INTO key_daily_spend (key_id, day, amount) VALUES (?, ?, ?) "
                    "ON CONFLICT (key_id, day) DO UPDATE SET amount = amount + excluded.amount",
                    (order.key_id, order.day, order.cost),
                )
    cur.execute(
        _SQLITE_USAGE,
        [
            order.request_id,
            order.user_id,
            order.key_id,
            order.cost,
            *_values(order.usage, _USAGE_COLUMNS),
            now,
        ],
    )
    return balance_after


# PostgreSQL -----------------------------------------------------------------------------------

_PG_HOLD = """
WITH acc AS (
    UPDATE accounts SET held = held + $3
    WHERE user_id = $1 AND workspace = $6 AND balance - held >= $3
    RETURNING id
), k AS (
    UPDATE api_keys SET held = held + $3 WHERE id = $2 AND $7 AND EXISTS (SELECT 1 FROM acc)
), h AS (
    INSERT INTO holds (request_id, account_id, key_id, amount, owner, created_at)
    SELECT $4, acc.id, $2, $3, $5, now() FROM acc
)
SELECT (SELECT id FROM acc) AS placed,
       (SELECT balance - held FROM accounts WHERE user_id = $1 AND workspace = $6) AS available
"""

_PG_SETTLE = """
WITH h AS (
    DELETE FROM holds WHERE request_id = $1 RETURNING amount
), acc AS (
    UPDATE accounts SET held = held - COALESCE((SELECT amount FROM h), 0), balance = balance - $4
    WHERE user_id = $2 AND workspace = $6 AND ($4 > 0 OR EXISTS (SELECT 1 FROM h))
    RETURNING id, balance
), k AS (
    UPDATE api_keys SET held = held - COALESCE((SELECT amount FROM h), 0), spent = spent + $4
    WHERE id = $3 AND $32 AND ($4 > 0 OR EXISTS (SELECT 1 FROM h))
), d AS (
    INSERT INTO key_daily_spend (key_id, day, amount) SELECT $3, $5, $4 WHERE $4 > 0 AND $32
    ON CONFLICT (key_id, day) DO UPDATE SET amount = key_daily_spend.amount + EXCLUDED.amount
), l AS (
    INSERT INTO ledger (account_id, kind, amount, balance_after, request_id, user_id, key_id,
                        model, group_name, channel, prompt_tokens, cached_tokens,
                        cache_write_tokens, completion_tokens, prices, note, created_at)
    SELECT acc.id, 'charge', -$4, acc.balance, $1, $2, $3,
           $7, $8, $9, $10, $11, $12, $13, $14::json, $15, now()
    FROM acc WHERE $4 > 0
), u AS (
    INSERT INTO usage_records (request_id, user_id, key_id, cost, endpoint, model, group_name,
                               channel, stream, status, outcome, error_code, prompt_tokens,
                               cached_tokens, cache_write_tokens, completion_tokens,
                               usage_estimated, prices, latency_ms, ttfb_ms, created_at)
    VALUES ($1, $2, $3, $4, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28,
            $29::json, $30, $31, now())
)
SELECT balance FROM acc WHERE $4 > 0
"""


class PostgresHotLedger:
    """``synchronous_commit=False`` lets a commit return before PostgreSQL flushes its WAL to
    disk: a gateway crash loses nothing (the commit is in the server), a crash of the database
    server itself can lose the last fraction of a second of holds and settlements, each whole
    or not at all, so the books still balance (a lost settlement is an uncharged call)."""

    def __init__(self, url: str, *, pool_size: int = 8, synchronous_commit: bool = True) -> None:
        parsed = make_url(url).set(drivername="postgresql")
        self._dsn = parsed.render_as_string(hide_password=False)
        self._pool_size = pool_size
        self._synchronous_commit = synchronous_commit
        self._pool: Any = None

    async def start(self) -> None:
        import asyncpg

        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=self._pool_size,
            server_settings={"synchronous_commit": "on" if self._synchronous_commit else "off"},
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def hold(self, order: HoldOrder) -> int | None:
        row = await self._pool.fetchrow(
            _PG_HOLD,
            order.user_id,
            order.key_id,
            order.amount,
            order.request_id,
            order.owner,
            order.workspace,
            order.key_limited,
        )
        if row["placed"] is not None:
            return None
        return int(row["available"] or 0)

    async def settle(self, order: SettleOrder) -> int | None:
        value = await self._pool.fetchval(
            _PG_SETTLE,
            order.request_id,
            order.user_id,
            order.key_id,
            order.cost,
            order.day,
            order.workspace,
            *_values(order.ledger, _LEDGER_COLUMNS),
            *_values(order.usage, _USAGE_COLUMNS),
            order.key_limited,
        )
        return None if value is None else int(value)


def hot_ledger_for(
    database_url: str, *, synchronous_commit: bool = True, pool_size: int = 8
) -> HotLedger:
    parsed = make_url(database_url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database
        return SQLiteHotLedger(parsed.database)
    return PostgresHotLedger(
        database_url, pool_size=pool_size, synchronous_commit=synchronous_commit
    )
