"""The admin API and the key holder's self-service reads, over plain HTTP; and the hold cap."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reapi.config import build_config
from reapi.settings import Settings
from tests.conftest import Gateway, start_gateway, unique
from tests.fakes.openai_upstream import FakeOpenAI, Reply

ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture(scope="module")
def capped(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Gateway]:
    config = build_config(
        {
            "channels": [
                {
                    "name": "fake",
                    "type": "openai",
                    "base_url": fake_openai.base_url,
                    "models": ["gpt-5.5"],
                }
            ],
            "models": {"gpt-5.5": {"input_per_mtok": "1.25", "output_per_mtok": "10.00"}},
            "billing": {"hold_cap_usd": "0.0005"},
        }
    )
    gateway = start_gateway(Settings(database_url=database_url, admin_token="admin-secret"), config)
    yield gateway
    gateway.server.stop()


def test_admin_lifecycle(capped: Gateway, upstream: FakeOpenAI) -> None:
    base = capped.url + "/admin"
    name = unique("admin")
    assert httpx.post(base + "/users", json={"name": name}).status_code == 401
    created = httpx.post(base + "/users", headers=ADMIN, json={"name": name, "groups": ["default"]})
    assert created.status_code == 201 and created.json()["name"] == name
    assert httpx.post(base + "/users", headers=ADMIN, json={"name": name}).status_code == 400
    key = httpx.post(
        base + f"/users/{name}/keys", headers=ADMIN, json={"name": "ci", "spend_limit": "5"}
    ).json()
    assert key["secret"].startswith("sk-") and key["spend_limit"] == "5.00"
    assert httpx.post(base + "/users/nobody/keys", headers=ADMIN, json={}).status_code == 404
    misspelt = httpx.post(base + f"/users/{name}/keys", headers=ADMIN, json={"model": ["x"]})
    assert misspelt.status_code == 400 and misspelt.json()["error"]["param"] == "model"
    credit = httpx.post(
        base + f"/users/{name}/credit", headers=ADMIN, json={"amount": "2.50", "note": "invoice 7"}
    )
    assert credit.json()["balance"] == "2.50"
    bad = httpx.post(base + f"/users/{name}/credit", headers=ADMIN, json={"amount": 2.5})
    assert bad.status_code == 400  # a float is refused: money travels as decimal strings
    user_headers = {"Authorization": f"Bearer {key['secret']}"}
    response = httpx.post(
        capped.url + "/v1/chat/completions",
        headers=user_headers,
        json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert response.status_code == 200
    balance = httpx.get(base + f"/users/{name}/balance", headers=ADMIN).json()
    assert balance == {
        "workspace": "chat",
        "balance": "2.499895",
        "held": "0.00",
        "available": "2.499895",
    }
    usage = httpx.get(base + f"/users/{name}/usage", headers=ADMIN).json()["data"]
    assert [u["request_id"] for u in usage] == [response.headers["x-request-id"]]
    grants = httpx.get(
        capped.url + "/v1/dashboard/billing/credit_grants", headers=user_headers
    ).json()
    assert grants["total_granted"] == "2.50" and grants["total_used"] == "0.000105"
    assert grants["total_available"] == "2.499895"
    own = httpx.get(capped.url + "/v1/dashboard/usage", headers=user_headers).json()["data"]
    assert own[0]["cost"] == "0.000105"
    listed = httpx.get(base + f"/users/{name}/keys", headers=ADMIN).json()["data"]
    assert "secret" not in listed[0] and listed[0]["spent"] == "0.000105"
    assert httpx.delete(base + f"/keys/{key['id']}", headers=ADMIN).json()["revoked_at"]
    assert httpx.get(base + "/ledger/verify", headers=ADMIN).json()["ok"] is True


def test_admin_api_is_off_without_a_token(gateway: Gateway) -> None:
    response = httpx.get(gateway.url + "/admin/users", headers=ADMIN)
    assert response.status_code == 403
    assert "REAPI_ADMIN_TOKEN" in response.json()["error"]["message"]


def test_hold_cap_lets_small_balances_call_and_records_the_debt(
    capped: Gateway, upstream: FakeOpenAI
) -> None:
    name, key = capped.user(credit="0.001")
    # max_tokens 128000 would hold $1.28: the cap holds $0.0005 instead.
    upstream.enqueue(Reply(completion_tokens=200))
    response = httpx.post(
        capped.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "gpt-5.5",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 128000,
        },
    )
    assert response.status_code == 200
    # 12 x 1.25 + 200 x 10 per 1M = $0.002015: the balance ends below zero by what the cap
    # left uncovered, a debt the next credit pays first.
    state = capped.balance(name)
    assert state.balance == 1_000_000 - 2_015_000
    refused = httpx.post(
        capped.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5},
    )
    assert refused.status_code == 402
    assert capped.billing(lambda b: b.verify()) == []


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/users", {"name": "NAME", "groups": [5]}, "groups.0"),
        ("/users", {"name": "NAME", "groups": "default"}, "groups"),
        ("/users", {"name": 5}, "name"),
        ("/users", {"name": "NAME\n"}, "name"),
        ("/users", {"groups": ["default"]}, "name"),
        ("/users/NAME/keys", {"group": 5}, "group"),
        ("/users/NAME/keys", {"models": "gpt-5.5"}, "models"),
        ("/users/NAME/keys", {"models": []}, "models"),
        ("/users/NAME/keys", {"spend_limit": 5}, "spend_limit"),
        ("/users/NAME/keys", {"spend_limit": "0"}, "spend_limit"),
        ("/users/NAME/keys", {"daily_spend_limit": "1e999999999"}, "daily_spend_limit"),
        ("/users/NAME/keys", {"expires_at": "next week"}, "expires_at"),
        ("/users/NAME/keys", {"expires_at": "2027-01-01T10:00"}, "expires_at"),
        ("/users/NAME/keys", {"expires_at": 1767225600}, "expires_at"),
        ("/users/NAME/keys", {"workspace": "images"}, "workspace"),
        ("/users/NAME/keys", {"name": "a\x00b"}, "name"),
        ("/users/NAME/credit", {"amount": "1e999999999"}, "amount"),
        ("/users/NAME/credit", {"amount": "NaN"}, "amount"),
        ("/users/NAME/credit", {"amount": "-5"}, "amount"),
        ("/users/NAME/credit", {"amount": "0.00"}, "amount"),
        ("/users/NAME/credit", {"amount": "1000000000"}, "amount"),
        ("/users/NAME/credit", {"amount": "1.0000001", "workspace": "tasks"}, "amount"),
        ("/users/NAME/credit", {"amount": "1", "note": ["x"]}, "note"),
    ],
)
def test_admin_refuses_mistyped_bodies_and_changes_nothing(
    capped: Gateway, path: str, body: dict[str, object], param: str
) -> None:
    name = unique("strict")
    base = capped.url + "/admin"
    assert httpx.post(base + "/users", headers=ADMIN, json={"name": name}).status_code == 201
    if body.get("name") == "NAME":
        body = {**body, "name": unique("strict")}
    response = httpx.post(base + path.replace("NAME", name), headers=ADMIN, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["x-request-id"]
    assert httpx.get(base + f"/users/{name}/keys", headers=ADMIN).json()["data"] == []
    balance = httpx.get(base + f"/users/{name}/balance", headers=ADMIN).json()
    assert balance["balance"] == "0.00"


def test_admin_refuses_bodies_that_are_not_json_objects(capped: Gateway) -> None:
    for content in (b"[]", b"5", b"{", b"[" * 5000 + b"]" * 5000, b'{"name": "\\ud800"}'):
        response = httpx.post(capped.url + "/admin/users", headers=ADMIN, content=content)
        assert response.status_code == 400, (content[:20], response.text)
        assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("path", ["/admin/users/NAME/usage", "/v1/dashboard/usage"])
@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"limit": "²"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100001"}, "limit"),
        ({"limit": "9" * 40}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-W01"}, "until"),
        ({"since": "2026-01-01T10:00"}, "since"),
        ({"model": "gpt\x00"}, "model"),
        ({"key": "k" * 33}, "key"),
    ],
)
def test_usage_refuses_malformed_query_parameters(
    capped: Gateway, path: str, query: dict[str, str], param: str
) -> None:
    name, key = capped.user()
    headers = ADMIN if path.startswith("/admin") else {"Authorization": f"Bearer {key}"}
    response = httpx.get(capped.url + path.replace("NAME", name), params=query, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_usage_filters_take_dates_and_offsets(capped: Gateway) -> None:
    _, key = capped.user()
    headers = {"Authorization": f"Bearer {key}"}
    for query in (
        {"since": "2026-01-01"},
        {"since": "2026-01-01T08:30:00"},  # no offset: UTC
        {"until": "2999-01-01t00:00:00.123456789+05:30", "limit": "3"},
        # Valid RFC 3339 that UTC cannot hold: read as the first and last instants there are.
        {"since": "0001-01-01T00:00:00+01:00", "until": "9999-12-31T23:59:60-23:59"},
    ):
        response = httpx.get(capped.url + "/v1/dashboard/usage", params=query, headers=headers)
        assert response.status_code == 200 and response.json()["data"] == []


def test_admin_path_names_that_cannot_exist_are_404(capped: Gateway) -> None:
    for path in ("/users/a%00b/balance", "/users/-x/usage", "/keys/" + "k" * 40):
        method = "DELETE" if path.startswith("/keys") else "GET"
        response = httpx.request(method, capped.url + "/admin" + path, headers=ADMIN)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"
