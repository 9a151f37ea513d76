"""Money through the HTTP surface: exact charges, 402 before any upstream call, free failures,
the client-disconnect rule, concurrency against a small balance, rate limits and key limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import orjson
import pytest

from reapi.config import build_config
from reapi.money import usd_to_units
from reapi.services.billing import UsageQuery, usage_json
from reapi.settings import Settings
from tests.clients import openai_client
from tests.conftest import Gateway, start_gateway
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply

HELLO = [{"role": "user", "content": "Hello"}]
# gpt-5.5 at $1.25 / $10 per 1M tokens; the fake reports 12 prompt + 9 completion tokens.
DEFAULT_COST = 12 * 1250 + 9 * 10_000  # units of 1e-9 USD


@pytest.fixture(scope="module")
def billed(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Gateway]:
    config = build_config(
        {
            "channels": [
                {
                    "name": "fake",
                    "type": "openai",
                    "base_url": fake_openai.base_url,
                    "models": ["gpt-5.5", "gpt-5.4"],
                    "groups": ["default", "cheap", "limited", "tokens", "narrow"],
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
            },
            "groups": {
                "default": {},
                "cheap": {"price_ratio": "0.5"},
                "limited": {"rpm": 3},
                "tokens": {"tpm": 5000},
                "narrow": {"max_concurrency": 1},
            },
        }
    )
    settings = Settings(database_url=database_url)
    gateway = start_gateway(settings, config)
    yield gateway
    gateway.server.stop()


def post(gateway: Gateway, key: str, **body: Any) -> httpx.Response:
    payload = {"model": "gpt-5.5", "messages": HELLO, **body}
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json=payload,
        timeout=30,
    )


def records(gateway: Gateway, name: str) -> list[dict[str, Any]]:
    found = gateway.billing(lambda b: b.usage(name, UsageQuery()))
    return [usage_json(r) for r in found]


def test_charges_are_exact_and_explained(billed: Gateway, upstream: FakeOpenAI) -> None:
    name, key = billed.user(credit="1")
    ids = []
    for stream in (False, True, False, True, False):
        response = post(billed, key, stream=stream)
        assert response.status_code == 200
        ids.append(response.headers["x-request-id"])
        if not stream:
            assert response.headers["x-reapi-cost"] == "0.000105"
        else:
            # The cost rides as an SSE comment right before the end marker.
            assert response.content.endswith(b": x-reapi-cost 0.000105\n\ndata: [DONE]\n\n")
    state = billed.balance(name)
    assert state.balance == usd_to_units("1") - 5 * DEFAULT_COST
    assert state.held == 0
    rows = records(billed, name)
    assert sorted(r["request_id"] for r in rows) == sorted(ids)
    for row in rows:
        assert row["cost"] == "0.000105"
        assert row["prices"]["input_per_mtok"] == "1.25"
        assert (row["prompt_tokens"], row["completion_tokens"], row["outcome"]) == (12, 9, "ok")
    assert billed.billing(lambda b: b.verify()) == []


def test_group_price_ratio_and_cached_tokens(billed: Gateway, upstream: FakeOpenAI) -> None:
    name, key = billed.user(groups=("default", "cheap"), credit="1")
    assert post(billed, key, group="cheap").headers["x-reapi-cost"] == "0.0000525"
    upstream.enqueue(Reply(prompt_tokens=1000, cached_tokens=800, completion_tokens=100))
    response = post(billed, key, model="gpt-5.4")
    # 200 uncached x 0.75 + 800 cached x 0.075 + 100 out x 4.50, per 1M tokens
    assert response.headers["x-reapi-cost"] == "0.00066"
    assert billed.balance(name).balance == usd_to_units("1") - 52_500 - 660_000


def test_insufficient_balance_is_402_without_an_upstream_call(
    billed: Gateway, upstream: FakeOpenAI
) -> None:
    name, key = billed.user(credit="0.0002")
    client = openai_client(api_key=key, base_url=billed.url + "/v1", max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="gpt-5.5", messages=HELLO)  # holds 4096 tokens
    assert raised.value.status_code == 402
    assert raised.value.code == "insufficient_quota"
    assert "lower max_tokens" in raised.value.message
    assert upstream.requests == []
    # A smaller max_tokens fits the same balance.
    client.chat.completions.create(model="gpt-5.5", messages=HELLO, max_tokens=9)
    assert billed.balance(name).balance == usd_to_units("0.0002") - DEFAULT_COST
    _, broke = billed.user(credit=None)
    assert post(billed, broke).status_code == 402


@pytest.mark.parametrize(
    ("behaviour", "stream"),
    [
        (Fail(500), False),
        (Fail(400), False),
        (Fail(429), True),
        (Reply(delay=4.0), False),
        (Reply(text="a b c d e f g", break_after=4), True),
    ],
)
def test_failed_calls_are_free(
    billed: Gateway, upstream: FakeOpenAI, behaviour: Reply | Fail, stream: bool
) -> None:
    name, key = billed.user(credit="1")
    upstream.enqueue(behaviour)
    response = post(billed, key, stream=stream)
    assert response.status_code != 200 or b"[DONE]" not in response.content
    state = billed.balance(name)
    assert (state.balance, state.held) == (usd_to_units("1"), 0)
    [row] = records(billed, name)
    assert row["cost"] == "0.00"
    assert row["outcome"] in ("upstream_error", "upstream_broke", "rejected")


@pytest.mark.parametrize(
    "event",
    [
        b"data: {not json\n\n",
        b"data: [1, 2]\n\n",
        b'data: "text"\n\n',
        b'data: {"choices": 5}\n\n',
        b'data: {"choices": [{"index": 0, "delta": {"tool_calls": 7}}]}\n\n',
    ],
)
def test_a_malformed_upstream_event_ends_the_stream_at_once_and_free(
    billed: Gateway, upstream: FakeOpenAI, event: bytes
) -> None:
    name, key = billed.user(credit="1")
    # Well-formed chunks follow the bad one for a while: the gateway must not wait for them.
    upstream.enqueue(Reply(text=" ".join(["word"] * 200), interval=0.02, inject={3: event}))
    body = post(billed, key, stream=True).content
    events = [line[6:] for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert b"[DONE]" not in events
    error = orjson.loads(events[-1])["error"]
    assert error["code"] == "upstream_stream_broken" and "malformed" in error["message"]
    deadline = time.monotonic() + 5
    while not upstream.requests[0].disconnected:
        assert time.monotonic() < deadline, "the gateway kept reading a corrupt stream"
        time.sleep(0.05)
    assert upstream.requests[0].chunks_sent < 100
    # A call that did not end well is settled as its stream closes, just after the last byte.
    while not (rows := records(billed, name)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [row] = rows
    assert (row["outcome"], row["cost"]) == ("upstream_broke", "0.00")
    state = billed.balance(name)
    assert (state.balance, state.held) == (usd_to_units("1"), 0)


def test_client_leaving_mid_stream_pays_for_what_was_produced(
    billed: Gateway, upstream: FakeOpenAI
) -> None:
    name, key = billed.user(credit="1")
    upstream.enqueue(Reply(text=" ".join(["token"] * 300), interval=0.02))
    with httpx.stream(
        "POST",
        billed.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-5.5", "messages": HELLO, "stream": True},
    ) as response:
        lines = response.iter_lines()
        for _ in range(20):
            next(lines)
    deadline = time.monotonic() + 5
    while not (rows := records(billed, name)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [row] = rows
    assert row["outcome"] == "client_gone" and row["usage_estimated"] is True
    # The upstream sent no usage: the prompt's strings ("user", "Hello") are 9 characters ->
    # 3 tokens; the output is counted from the relayed deltas, at 4 characters per token.
    assert row["prompt_tokens"] == 3
    assert 2 <= row["completion_tokens"] < 300 * 6 // 4
    cost = 3 * 1250 + row["completion_tokens"] * 10_000
    assert billed.balance(name).balance == usd_to_units("1") - cost
    assert billed.balance(name).held == 0


def test_concurrent_calls_never_overspend(billed: Gateway, upstream: FakeOpenAI) -> None:
    # Each call holds about max_tokens x $10/M = $0.01: the balance covers four at a time.
    name, key = billed.user(credit="0.045")
    # Long enough that all 24 overlap, short of the 3 s read timeout this gateway is given.
    upstream.enqueue(*[Reply(delay=2.0) for _ in range(24)])
    with ThreadPoolExecutor(24) as pool:
        statuses = list(
            pool.map(lambda _: post(billed, key, max_tokens=1000).status_code, range(24))
        )
    assert set(statuses) <= {200, 402}
    assert 1 <= statuses.count(200) <= 4
    state = billed.balance(name)
    assert state.held == 0
    assert state.balance == usd_to_units("0.045") - statuses.count(200) * DEFAULT_COST
    assert len(upstream.requests) == statuses.count(200)
    assert billed.billing(lambda b: b.verify()) == []


def test_rpm_limit_with_openai_headers(billed: Gateway, upstream: FakeOpenAI) -> None:
    _, key = billed.user(groups=("limited",), group="limited")
    remaining = []
    for _ in range(3):
        response = post(billed, key)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(int(response.headers["x-ratelimit-remaining-requests"]))
    assert remaining == [2, 1, 0]
    refused = post(billed, key)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert refused.json()["error"]["type"] == "rate_limit_exceeded"
    assert "different group" in refused.json()["error"]["message"]
    assert len(upstream.requests) == 3


def test_tpm_is_reserved_then_corrected(billed: Gateway, upstream: FakeOpenAI) -> None:
    _, key = billed.user(groups=("tokens",), group="tokens")
    # 4000 reserved of 5000 per minute; settlement gives back all but the 21 really used.
    for _ in range(3):
        response = post(billed, key, max_tokens=4000)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit-tokens"] == "5000"
    too_big = post(billed, key, max_tokens=6000)
    assert too_big.status_code == 429
    assert "more tokens than the group allows" in too_big.json()["error"]["message"]


def test_concurrency_limit(billed: Gateway, upstream: FakeOpenAI) -> None:
    _, key = billed.user(groups=("narrow",), group="narrow")
    release = threading.Event()
    upstream.enqueue(Reply(release=release))
    slow = threading.Thread(target=post, args=(billed, key))
    slow.start()
    try:
        deadline = time.monotonic() + 10
        while not upstream.requests:  # admitted: it holds the group's one slot
            assert time.monotonic() < deadline, "the first call never reached the upstream"
            time.sleep(0.01)
        assert post(billed, key).status_code == 429
    finally:
        release.set()
        slow.join()
    assert post(billed, key).status_code == 200


def test_key_spend_limit_expiry_and_models(billed: Gateway, upstream: FakeOpenAI) -> None:
    from reapi.services.keys import KeyControls, KeyService

    name, _ = billed.user(credit="1")

    def key_with(controls: KeyControls) -> str:
        async def make(db: Any) -> str:
            return (await KeyService(db).create_key(name, controls=controls)).secret

        return billed.billing(lambda b: make(b._db))

    limited = key_with(KeyControls(spend_limit=usd_to_units("0.0003")))
    # Each call costs $0.000105 and holds up to $0.000121 (its prompt bound and max_tokens):
    # after two calls, a third's hold no longer fits under the key's $0.0003.
    statuses = [post(billed, limited, max_tokens=9).status_code for _ in range(4)]
    assert statuses == [200, 200, 402, 402]
    refused = post(billed, limited, max_tokens=9).json()["error"]
    assert refused["code"] == "key_spend_limit" and "spend limit" in refused["message"]

    from datetime import UTC, datetime, timedelta

    expired = key_with(KeyControls(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    response = post(billed, expired)
    assert response.status_code == 403 and response.json()["error"]["code"] == "key_expired"
    only_54 = key_with(KeyControls(allowed_models=["gpt-5.4"]))
    assert post(billed, only_54).status_code == 403
    assert post(billed, only_54, model="gpt-5.4").status_code == 200
