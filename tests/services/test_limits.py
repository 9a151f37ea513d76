"""The limiter contract, on both implementations: the in-process one and the Redis one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from reapi.errors import RateLimited
from reapi.services.limits import Limiter, Limits, LocalLimiter, RedisLimiter, duration

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["local", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[Limiter]:
    if request.param == "local":
        yield LocalLimiter()
        return
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    yield RedisLimiter(client, prefix=f"reapi-test:{uuid.uuid4().hex}:")
    await client.aclose()


async def test_rpm_admits_the_limit_then_refuses(limiter: Limiter) -> None:
    limits = Limits(rpm=5)
    tickets = [await limiter.admit("u:g", limits, 1, f"r{i}") for i in range(5)]
    assert [t.headers["x-ratelimit-remaining-requests"] for t in tickets] == [
        "4",
        "3",
        "2",
        "1",
        "0",
    ]
    with pytest.raises(RateLimited) as refused:
        await limiter.admit("u:g", limits, 1, "r6")
    # One request's worth refills in 60/5 = 12 s.
    assert 10 <= int(refused.value.headers["retry-after"]) <= 12
    await limiter.admit("other:g", limits, 1, "r7")  # scopes are independent


async def test_tokens_are_reserved_and_corrected(limiter: Limiter) -> None:
    limits = Limits(tpm=1000)
    first = await limiter.admit("u:g", limits, 900, "a")
    with pytest.raises(RateLimited):
        await limiter.admit("u:g", limits, 200, "b")
    await limiter.finish(first, 100)  # it really used 100: 800 come back
    ticket = await limiter.admit("u:g", limits, 800, "c")
    assert int(ticket.headers["x-ratelimit-remaining-tokens"]) <= 100
    with pytest.raises(RateLimited) as impossible:
        await limiter.admit("u:g", limits, 5000, "d")
    assert "more tokens than the group allows" in impossible.value.message


async def test_concurrency_is_released_on_finish(limiter: Limiter) -> None:
    limits = Limits(max_concurrency=2)
    a = await limiter.admit("u:g", limits, 1, "a")
    await limiter.admit("u:g", limits, 1, "b")
    with pytest.raises(RateLimited):
        await limiter.admit("u:g", limits, 1, "c")
    await limiter.finish(a, 1)
    await limiter.finish(a, 1)  # idempotent: does not free a second slot
    await limiter.admit("u:g", limits, 1, "d")
    with pytest.raises(RateLimited):
        await limiter.admit("u:g", limits, 1, "e")


async def test_no_double_burst_at_a_window_boundary() -> None:
    now = [1000.0]
    limiter = LocalLimiter(clock=lambda: now[0])
    limits = Limits(rpm=60)
    admitted: list[float] = []
    # Hammer for two minutes in 100 ms steps. A fixed window lets 60 through just before a
    # boundary and 60 more just after it; a smooth bucket, once its burst is spent, only lets
    # the refill through: about one request per second.
    for step in range(1200):
        now[0] = 1000.0 + step * 0.1
        try:
            await limiter.admit("u:g", limits, 1, str(step))
            admitted.append(now[0])
        except RateLimited:
            pass
    after_burst = [t for t in admitted if t >= 1010.0]
    densest = max(sum(1 for t in after_burst if start <= t < start + 2) for start in after_burst)
    assert densest <= 3
    assert len([t for t in admitted if t >= 1060.0]) <= 61


def test_share_divides_limits_between_workers() -> None:
    limiter = LocalLimiter(share=4)
    assert limiter._scaled(Limits(rpm=100, tpm=1000, max_concurrency=2)) == Limits(25, 250, 1)


def test_duration_format() -> None:
    assert [duration(s) for s in (0, 0.02, 1.5, 6, 360)] == ["0s", "20ms", "1.5s", "6s", "6m0s"]
