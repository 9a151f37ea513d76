"""A request field or an upstream's numbers never move money the hold did not cover.

Each call has one output bound, read from every field that caps output (``max_tokens``,
``max_completion_tokens``, ``n``) in either wire format: it is what the gateway holds for and
exactly what the upstream is told. Usage an upstream reports that is missing, malformed or
beyond physical bounds is replaced by the gateway's estimate, capped at the bound.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reapi.config import build_config
from reapi.money import usd_to_units
from reapi.services.billing import UsageQuery, usage_json
from reapi.settings import Settings
from tests.conftest import Gateway, start_gateway
from tests.fakes.openai_upstream import FakeOpenAI, Reply

HELLO = [{"role": "user", "content": "Hello"}]
GPT = {"input": Decimal("1.25"), "output": Decimal("10")}  # USD per 1M tokens
CLAUDE = {"input": Decimal("3"), "output": Decimal("15")}
BOUND_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Gateway]:
    config = build_config(
        {
            "channels": [
                {
                    "name": "openai",
                    "type": "openai",
                    "base_url": fake_openai.base_url,
                    "timeouts": {"first_byte": 5, "between_chunks": 5},
                    "models": ["gpt-5.5"],
                },
                {
                    "name": "anthropic",
                    "type": "anthropic",
                    "base_url": fake_openai.anthropic_url,
                    "timeouts": {"first_byte": 5, "between_chunks": 5},
                    "models": ["claude-sonnet-4-6"],
                },
            ],
            "models": {
                "gpt-5.5": {"input_per_mtok": "1.25", "output_per_mtok": "10.00"},
                "claude-sonnet-4-6": {"input_per_mtok": "3", "output_per_mtok": "15"},
            },
        }
    )
    gateway = start_gateway(Settings(database_url=database_url), config)
    yield gateway
    gateway.server.stop()


def call(gateway: Gateway, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        gateway.url + path,
        headers={"Authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"},
        json=body,
        timeout=30,
    )


def bound_fields(received: Any) -> dict[str, Any]:
    return {name: received[name] for name in BOUND_FIELDS if name in received}


def most(prices: dict[str, Decimal], prompt_tokens: int, output_tokens: int) -> int:
    """A generous ceiling on a call's cost: more prompt tokens than the request has bytes."""
    usd = (prompt_tokens * prices["input"] + output_tokens * prices["output"]) / 10**6
    return usd_to_units(str(usd))


def cost_of(response: httpx.Response) -> int:
    return usd_to_units(response.headers["x-reapi-cost"])


def replaced(gateway: Gateway, model: str, reason: str) -> float:
    text = httpx.get(gateway.url + "/metrics").text
    pattern = rf'reapi_usage_replaced_total\{{model="{re.escape(model)}",reason="{reason}"\}} (\S+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize(
    ("model", "upstream_path", "sent_field"),
    [
        ("gpt-5.5", "/v1/chat/completions", "max_completion_tokens"),
        ("claude-sonnet-4-6", "/v1/messages", "max_tokens"),
    ],
)
def test_messages_holds_and_sends_the_smallest_output_cap(
    gateway: Gateway, upstream: FakeOpenAI, model: str, upstream_path: str, sent_field: str
) -> None:
    name, key = gateway.user(credit="0.10")
    # The upstream ignores the cap and reports far more output than it was allowed.
    upstream.enqueue(Reply(completion_tokens=128_000))
    body = {
        "model": model,
        "max_tokens": 128_000,
        "max_completion_tokens": 1,
        "messages": HELLO,
    }
    response = call(gateway, key, "/v1/messages", body)
    assert response.status_code == 200, response.text
    sent = upstream.requests[-1]
    assert sent.path == upstream_path
    assert bound_fields(sent.body) == {sent_field: 1}
    prices = GPT if model == "gpt-5.5" else CLAUDE
    assert 0 < cost_of(response) <= most(prices, 200, 1)
    state = gateway.balance(name)
    assert state.balance >= 0 and state.held == 0
    assert state.balance == usd_to_units("0.10") - cost_of(response)
    (record,) = [usage_json(r) for r in gateway.billing(lambda b: b.usage(name, UsageQuery()))]
    assert record["completion_tokens"] <= 1 and record["usage_estimated"] is True


def test_a_cap_of_the_wrong_type_is_a_400_in_the_clients_envelope(
    gateway: Gateway, upstream: FakeOpenAI
) -> None:
    key = gateway.key()
    for value in ("1", 0, -3, 1.5, True, [1]):
        body = {"model": "gpt-5.5", "max_tokens": 64, "max_completion_tokens": value}
        response = call(gateway, key, "/v1/messages", {**body, "messages": HELLO})
        assert response.status_code == 400, (value, response.text)
        error = response.json()
        assert error["type"] == "error"
        assert error["error"]["type"] == "invalid_request_error"
        assert "max_completion_tokens" in error["error"]["message"]
        assert response.headers["x-request-id"]
    assert not upstream.requests


def test_n_choices_are_held_for_and_sent(gateway: Gateway, upstream: FakeOpenAI) -> None:
    name, key = gateway.user(credit="1")
    upstream.enqueue(Reply(completion_tokens=20 * 9))
    body = {"model": "gpt-5.5", "messages": HELLO, "n": 20, "max_completion_tokens": 50}
    response = call(gateway, key, "/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    assert len(response.json()["choices"]) == 20
    sent = upstream.requests[-1].body
    assert sent["n"] == 20 and bound_fields(sent) == {"max_completion_tokens": 50}
    assert cost_of(response) == usd_to_units(str((12 * GPT["input"] + 180 * GPT["output"]) / 10**6))
    assert gateway.balance(name).held == 0


def test_twenty_choices_do_not_fit_a_balance_that_one_would(
    gateway: Gateway, upstream: FakeOpenAI
) -> None:
    # 100 output tokens at $10 per 1M is $0.001: one choice fits $0.005, twenty do not.
    _, key = gateway.user(credit="0.005")
    body = {"model": "gpt-5.5", "messages": HELLO, "max_completion_tokens": 100}
    assert call(gateway, key, "/v1/chat/completions", {**body, "n": 1}).status_code == 200
    refused = call(gateway, key, "/v1/chat/completions", {**body, "n": 20})
    assert refused.status_code == 402, refused.text
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("n", [-1, 0, 129, 1_000_000, "2", 2.0, None])
def test_n_out_of_range_is_refused(gateway: Gateway, upstream: FakeOpenAI, n: Any) -> None:
    key = gateway.key()
    response = call(
        gateway, key, "/v1/chat/completions", {"model": "gpt-5.5", "messages": HELLO, "n": n}
    )
    if n is None:  # null means the default, one choice
        assert response.status_code == 200
        assert "n" not in upstream.requests[-1].body
        return
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "n"
    assert not upstream.requests


def test_messages_refuses_more_than_one_answer(gateway: Gateway, upstream: FakeOpenAI) -> None:
    key = gateway.key()
    body = {"model": "claude-sonnet-4-6", "max_tokens": 10, "n": 3, "messages": HELLO}
    response = call(gateway, key, "/v1/messages", body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert not upstream.requests


def test_a_stream_without_usage_is_estimated_no_higher_than_its_bound(
    gateway: Gateway, upstream: FakeOpenAI
) -> None:
    name, key = gateway.user(credit="0.01")
    before = replaced(gateway, "gpt-5.5", "missing")
    # A megabyte of text against max_tokens 100, and no usage at the end.
    upstream.enqueue(Reply(text=" ".join(["word"] * 200_000), send_usage=False))
    body = {"model": "gpt-5.5", "messages": HELLO, "max_tokens": 100, "stream": True}
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json=body,
        timeout=60,
    ) as response:
        text = "".join(response.iter_text())
    assert response.status_code == 200
    assert "data: [DONE]" in text
    cost = usd_to_units(re.search(r": x-reapi-cost (\S+)", text).group(1))  # type: ignore[union-attr]
    assert 0 < cost <= most(GPT, 200, 100)
    (record,) = [usage_json(r) for r in gateway.billing(lambda b: b.usage(name, UsageQuery()))]
    assert record["completion_tokens"] == 100 and record["usage_estimated"] is True
    assert gateway.balance(name).balance >= 0
    assert replaced(gateway, "gpt-5.5", "missing") == before + 1


@pytest.mark.parametrize(
    ("path", "model", "usage"),
    [
        ("/v1/chat/completions", "gpt-5.5", {"prompt_tokens": 12, "completion_tokens": 10**15}),
        ("/v1/chat/completions", "gpt-5.5", {"prompt_tokens": 10**15, "completion_tokens": 3}),
        ("/v1/messages", "claude-sonnet-4-6", {"input_tokens": 12, "output_tokens": 10**15}),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_absurd_usage_is_billed_from_the_estimate(
    gateway: Gateway,
    upstream: FakeOpenAI,
    path: str,
    model: str,
    usage: dict[str, Any],
    stream: bool,
) -> None:
    name, key = gateway.user(credit="0.10")
    before = replaced(gateway, model, "out_of_bounds")
    upstream.enqueue(Reply(usage=usage))
    body = {"model": model, "messages": HELLO, "max_tokens": 50, "stream": stream}
    response = call(gateway, key, path, body)
    assert response.status_code == 200, response.text
    state = gateway.balance(name)
    assert state.held == 0
    (record,) = [usage_json(r) for r in gateway.billing(lambda b: b.usage(name, UsageQuery()))]
    assert record["usage_estimated"] is True and record["outcome"] == "ok"
    assert 0 < record["completion_tokens"] <= 50 and record["prompt_tokens"] < 1000
    assert 0 < usd_to_units(record["cost"]) <= most(GPT if model == "gpt-5.5" else CLAUDE, 200, 50)
    assert state.balance == usd_to_units("0.10") - usd_to_units(record["cost"])
    assert replaced(gateway, model, "out_of_bounds") == before + 1
    assert not gateway.billing(lambda b: b.verify())


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": "12", "completion_tokens": "9"},
        {"prompt_tokens": -12, "completion_tokens": -9},
        {"prompt_tokens": 12, "completion_tokens": 1e300},
        {"prompt_tokens": 12.0, "completion_tokens": 9.5},
    ],
)
def test_malformed_usage_is_not_billed_as_zero(
    gateway: Gateway, upstream: FakeOpenAI, usage: dict[str, Any]
) -> None:
    name, key = gateway.user(credit="0.10")
    upstream.enqueue(Reply(usage=usage))
    response = call(gateway, key, "/v1/chat/completions", {"model": "gpt-5.5", "messages": HELLO})
    assert response.status_code == 200, response.text
    assert cost_of(response) > 0
    (record,) = [usage_json(r) for r in gateway.billing(lambda b: b.usage(name, UsageQuery()))]
    assert record["usage_estimated"] is True
    # "Hello! How can I help you today?" is 32 characters: 8 tokens by the documented rule.
    assert record["completion_tokens"] == 8


def test_the_anthropic_sdk_sees_one_bound(gateway: Gateway, upstream: FakeOpenAI) -> None:
    _, key = gateway.user(credit="0.10")
    client = anthropic.Anthropic(api_key=key, base_url=gateway.url, max_retries=0)
    with client.messages.stream(
        model="gpt-5.5",
        max_tokens=128_000,
        messages=[{"role": "user", "content": "Hello"}],
        extra_body={"max_completion_tokens": 7},
    ) as stream:
        message = stream.get_final_message()
    assert message.content[0].type == "text"
    assert bound_fields(upstream.requests[-1].body) == {"max_completion_tokens": 7}
    client.close()


CAPS = st.one_of(st.none(), st.integers(1, 4000))
USAGE_COUNTS = st.one_of(
    st.integers(0, 5000), st.integers(0, 10**15), st.integers(-5, -1), st.just("7"), st.just(2.5)
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    caps=st.fixed_dictionaries({}, optional=dict.fromkeys(BOUND_FIELDS, CAPS)),
    n=st.one_of(st.none(), st.integers(1, 4)),
    endpoint=st.sampled_from(["/v1/chat/completions", "/v1/messages"]),
    model=st.sampled_from(["gpt-5.5", "claude-sonnet-4-6"]),
    stream=st.booleans(),
    prompt=USAGE_COUNTS,
    completion=USAGE_COUNTS,
)
def test_no_request_and_no_upstream_report_overdraws_a_balance(
    gateway: Gateway,
    upstream: FakeOpenAI,
    caps: dict[str, int | None],
    n: int | None,
    endpoint: str,
    model: str,
    stream: bool,
    prompt: Any,
    completion: Any,
) -> None:
    upstream.reset()
    name, key = gateway.user(credit="0.02")
    anthropic_upstream = model.startswith("claude")
    usage = (
        {"input_tokens": prompt, "output_tokens": completion}
        if anthropic_upstream
        else {"prompt_tokens": prompt, "completion_tokens": completion}
    )
    upstream.enqueue(Reply(usage=usage))
    body: dict[str, Any] = {"model": model, "messages": HELLO, "stream": stream, **caps}
    if endpoint == "/v1/messages" and body.get("max_tokens") is None:
        body["max_tokens"] = 300
    if n is not None:
        body["n"] = n
    response = call(gateway, key, endpoint, body)
    if stream and response.status_code == 200:
        assert "x-reapi-cost" in response.text
    state = gateway.balance(name)
    assert state.balance >= 0 and state.held == 0
    if response.status_code != 200:
        assert response.status_code in (400, 402), response.text
        assert state.balance == usd_to_units("0.02")
        return
    present = [v for v in (body.get(f) for f in BOUND_FIELDS) if v is not None]
    bound = min(present) if present else 4096
    (sent,) = upstream.requests
    fields = bound_fields(sent.body)
    assert list(fields.values()) == [bound], (body, fields)
    (record,) = [usage_json(r) for r in gateway.billing(lambda b: b.usage(name, UsageQuery()))]
    assert record["completion_tokens"] <= bound * (n or 1)
