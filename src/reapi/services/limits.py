"""Rate limits per (user, group): requests per minute, tokens per minute, concurrent calls.

RPM and TPM use GCRA (the generic cell rate algorithm): a smooth token bucket holding one
minute's allowance and refilling continuously, so there is no window boundary at which twice the
limit can pass. Tokens are reserved at admission (the prompt bound plus ``max_tokens``) and
corrected to the upstream's count when the call settles. A request larger than a whole minute's
allowance can never pass and is told so instead of being asked to retry.

Two implementations with one contract: ``LocalLimiter`` for one process, ``RedisLimiter`` (one
atomic Lua script per admission) for several gateway processes or nodes sharing limits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from reapi.errors import RateLimited

WINDOW = 60.0


@dataclass(frozen=True, slots=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None
    max_concurrency: int | None = None

    @property
    def any(self) -> bool:
        return bool(self.rpm or self.tpm or self.max_concurrency)


@dataclass(slots=True)
class LimitTicket:
    scope: str
    request_id: str
    limits: Limits
    tokens: int
    headers: dict[str, str] = field(default_factory=dict)
    finished: bool = False


class Limiter(Protocol):
    async def admit(
        self, scope: str, limits: Limits, tokens: int, request_id: str
    ) -> LimitTicket: ...

    async def finish(self, ticket: LimitTicket, actual_tokens: int | None) -> None: ...

    async def ping(self) -> None:
        """Raise unless the store behind the limits answers (readiness)."""
        ...

    async def close(self) -> None: ...


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest):d}s"


def _refusal(
    which: str, limit: int, retry_after: float, *, impossible: bool = False
) -> RateLimited:
    unit = {
        "requests": "requests per minute",
        "tokens": "tokens per minute",
        "concurrency": "concurrent requests",
    }[which]
    if impossible:
        return RateLimited(
            f"This request needs more tokens than the group allows in a minute ({limit} {unit}); "
            "lower max_tokens or use a group with a higher limit.",
            code="rate_limit_exceeded",
        )
    seconds = max(1, math.ceil(retry_after))
    headers = {"retry-after": str(seconds)}
    if which in ("requests", "tokens"):
        # The refusal carries the same OpenAI-style headers as every admitted response.
        headers[f"x-ratelimit-limit-{which}"] = str(limit)
        headers[f"x-ratelimit-remaining-{which}"] = "0"
        headers[f"x-ratelimit-reset-{which}"] = duration(retry_after)
    return RateLimited(
        f"Rate limit reached for this group: {limit} {unit}. Back off and retry in {seconds}s, "
        "or move to a different group.",
        code="rate_limit_exceeded",
        headers=headers,
    )


def _headers(
    limits: Limits, rem_req: float, reset_req: float, rem_tok: float, reset_tok: float
) -> dict[str, str]:
    headers: dict[str, str] = {}
    if limits.rpm:
        headers["x-ratelimit-limit-requests"] = str(limits.rpm)
        headers["x-ratelimit-remaining-requests"] = str(max(0, int(rem_req)))
        headers["x-ratelimit-reset-requests"] = duration(reset_req)
    if limits.tpm:
        headers["x-ratelimit-limit-tokens"] = str(limits.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, int(rem_tok)))
        headers["x-ratelimit-reset-tokens"] = duration(reset_tok)
    return headers


class LocalLimiter:
    """In-process state. With several worker processes and no Redis, each worker enforces its
    share (limit / workers), documented in docs/billing.md."""

    def __init__(self, *, share: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self._share = max(1, share)
        self._clock = clock
        self._tat: dict[str, float] = {}
        self._running: dict[str, int] = {}
        self._admissions = 0

    def _scaled(self, limits: Limits) -> Limits:
        if self._share == 1:
            return limits
        return Limits(
            *(
                max(1, v // self._share) if v else None
                for v in (limits.rpm, limits.tpm, limits.max_concurrency)
            )
        )

    async def admit(self, scope: str, limits: Limits, tokens: int, request_id: str) -> LimitTicket:
        effective = self._scaled(limits)
        now = self._clock()
        rem_req = reset_req = rem_tok = reset_tok = 0.0
        new_req = new_tok = None
        if effective.max_concurrency and self._running.get(scope, 0) >= effective.max_concurrency:
            raise _refusal("concurrency", effective.max_concurrency, 1.0)
        if effective.rpm:
            new_req, rem_req, reset_req = self._check(
                scope + ":r", effective.rpm, 1, now, "requests"
            )
        if effective.tpm:
            new_tok, rem_tok, reset_tok = self._check(
                scope + ":t", effective.tpm, tokens, now, "tokens"
            )
        if new_req is not None:
            self._tat[scope + ":r"] = new_req
        if new_tok is not None:
            self._tat[scope + ":t"] = new_tok
        if effective.max_concurrency:
            self._running[scope] = self._running.get(scope, 0) + 1
        self._admissions += 1
        if self._admissions % 10_000 == 0:
            self._prune(now)
        return LimitTicket(
            scope,
            request_id,
            effective,
            tokens,
            _headers(effective, rem_req, reset_req, rem_tok, reset_tok),
        )

    def _check(
        self, key: str, limit: int, cost: int, now: float, which: str
    ) -> tuple[float, float, float]:
        interval = WINDOW / limit
        if cost * interval > WINDOW:
            raise _refusal(which, limit, 0, impossible=True)
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + cost * interval
        if new_tat - now > WINDOW:
            raise _refusal(which, limit, new_tat - now - WINDOW)
        # The epsilon keeps 59.9999... from reading as 59 remaining requests.
        return new_tat, (now + WINDOW - new_tat) / interval + 1e-9, new_tat - now

    async def finish(self, ticket: LimitTicket, actual_tokens: int | None) -> None:
        if ticket.finished:
            return
        ticket.finished = True
        limits = ticket.limits
        if limits.max_concurrency:
            running = self._running.get(ticket.scope, 1) - 1
            if running > 0:
                self._running[ticket.scope] = running
            else:
                self._running.pop(ticket.scope, None)
        if limits.tpm and actual_tokens is not None and actual_tokens != ticket.tokens:
            key = ticket.scope + ":t"
            now = self._clock()
            tat = self._tat.get(key, now) + (actual_tokens - ticket.tokens) * (WINDOW / limits.tpm)
            self._tat[key] = max(tat, now)

    def _prune(self, now: float) -> None:
        # A bucket whose TAT has passed is full again: forgetting it changes nothing.
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = 60
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, lease = tonumber(ARGV[5]), tonumber(ARGV[6])
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= conc then return {0, 'concurrency', 1000, 0, 0, 0, 0} end
end
local function check(key, limit, cost)
  local interval = window / limit
  if cost * interval > window then return nil, -1 end
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + cost * interval
  if new_tat - now > window then return nil, (new_tat - now - window) end
  return new_tat, 0
end
local nr, nt
local rem_r, reset_r, rem_t, reset_t = 0, 0, 0, 0
if rpm > 0 then
  local wait
  nr, wait = check(KEYS[1], rpm, 1)
  if not nr then return {0, 'requests', math.ceil(wait * 1000), 0, 0, 0, 0} end
  rem_r = (now + window - nr) / (window / rpm) + 1e-9
  reset_r = nr - now
end
if tpm > 0 then
  local wait
  nt, wait = check(KEYS[2], tpm, tokens)
  if not nt then
    if wait < 0 then return {0, 'tokens_impossible', 0, 0, 0, 0, 0} end
    return {0, 'tokens', math.ceil(wait * 1000), 0, 0, 0, 0}
  end
  rem_t = (now + window - nt) / (window / tpm) + 1e-9
  reset_t = nt - now
end
if nr then redis.call('SET', KEYS[1], tostring(nr), 'EX', 120) end
if nt then redis.call('SET', KEYS[2], tostring(nt), 'EX', 120) end
if conc > 0 then
  redis.call('ZADD', KEYS[3], now + lease, ARGV[4])
  redis.call('EXPIRE', KEYS[3], math.ceil(lease) + 60)
end
return {1, 'ok', 0, math.floor(rem_r), math.floor(reset_r * 1000),
        math.floor(rem_t), math.floor(reset_t * 1000)}
"""

_CORRECT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[2], ARGV[1]) end
local delta = tonumber(ARGV[2])
if delta ~= 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or now) + delta
  if tat < now then tat = now end
  redis.call('SET', KEYS[1], tostring(tat), 'EX', 120)
end
return 1
"""


class RedisLimiter:
    """Shared by every gateway process pointed at the same Redis. Time comes from Redis itself,
    so nodes with skewed clocks still agree."""

    def __init__(
        self, redis: Any, *, prefix: str = "reapi:rl:", lease_seconds: float = 3600.0
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._lease = lease_seconds
        self._admit = redis.register_script(_ADMIT)
        self._correct = redis.register_script(_CORRECT)

    def _keys(self, scope: str) -> list[str]:
        base = self._prefix + scope
        return [base + ":r", base + ":t", base + ":c"]

    async def admit(self, scope: str, limits: Limits, tokens: int, request_id: str) -> LimitTicket:
        result = await self._admit(
            keys=self._keys(scope),
            args=[
                limits.rpm or 0,
                limits.tpm or 0,
                limits.max_concurrency or 0,
                request_id,
                tokens,
                self._lease,
            ],
        )
        allowed, which = int(result[0]), result[1]
        which = which.decode() if isinstance(which, bytes) else str(which)
        if not allowed:
            if which == "concurrency":
                raise _refusal("concurrency", limits.max_concurrency or 0, 1.0)
            if which == "tokens_impossible":
                raise _refusal("tokens", limits.tpm or 0, 0, impossible=True)
            limit = limits.rpm if which == "requests" else limits.tpm
            raise _refusal(which, limit or 0, int(result[2]) / 1000)
        headers = _headers(
            limits, int(result[3]), int(result[4]) / 1000, int(result[5]), int(result[6]) / 1000
        )
        return LimitTicket(scope, request_id, limits, tokens, headers)

    async def finish(self, ticket: LimitTicket, actual_tokens: int | None) -> None:
        if ticket.finished:
            return
        ticket.finished = True
        limits = ticket.limits
        delta = 0.0
        if limits.tpm and actual_tokens is not None:
            delta = (actual_tokens - ticket.tokens) * (WINDOW / limits.tpm)
        member = ticket.request_id if limits.max_concurrency else ""
        if member or delta:
            keys = self._keys(ticket.scope)
            await self._correct(keys=[keys[1], keys[2]], args=[member, delta])

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
