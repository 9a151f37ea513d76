"""GET /openapi.json: a valid OpenAPI 3.1 document naming every route, and the running gateway
fuzzed against it with schemathesis, stateless and stateful.

The fuzzing asserts what the document promises: no 5xx, every status documented, every body
(errors included) in the schema of its route's envelope, invalid input refused with a 4xx,
and authentication enforced. It drives a real gateway with chat and task channels on fake
upstreams. Example counts are small so the suite stays fast; set REAPI_FUZZ_EXAMPLES to run
more (e.g. 200) when changing validation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from openapi_spec_validator import validate
from schemathesis import checks
from schemathesis.config import ApiKeyAuthConfig, HttpBearerAuthConfig
from schemathesis.errors import FailureGroup
from starlette.routing import Route

from reapi.app import create_app
from reapi.config import Config, build_config
from reapi.http.openapi import build
from reapi.money import usd_to_units
from reapi.services.billing import BillingService
from reapi.services.keys import KeyControls, KeyService
from reapi.services.limits import LocalLimiter
from reapi.settings import Settings
from reapi.storage.db import Database
from tests.conftest import unique
from tests.fakes.openai_upstream import FakeOpenAI
from tests.task_gateway import TaskFakes, TaskGateway, task_config_raw

ADMIN_TOKEN = "admin-secret"
EXAMPLES = int(os.environ.get("REAPI_FUZZ_EXAMPLES", "15"))


def _config(fake_openai: FakeOpenAI, fakes: TaskFakes, media: Path) -> Config:
    raw = task_config_raw(fakes, media)
    raw["channels"].append(
        {
            "name": "fake-openai",
            "type": "openai",
            "base_url": fake_openai.base_url,
            "api_key": "sk-upstream",
            "models": ["gpt-5.5", "claude-sonnet-4-6"],
        }
    )
    raw["models"].update(
        {
            "gpt-5.5": {"input_per_mtok": "1.25", "output_per_mtok": "10.00"},
            "claude-sonnet-4-6": {"input_per_mtok": "3", "output_per_mtok": "15"},
        }
    )
    return build_config(raw)


@pytest.fixture(scope="module")
def fakes() -> Iterator[TaskFakes]:
    fakes = TaskFakes()
    yield fakes
    fakes.stop()


@pytest.fixture(scope="module")
def gw(
    fake_openai: FakeOpenAI,
    fakes: TaskFakes,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TaskGateway]:
    settings = Settings(database_url=database_url, admin_token=ADMIN_TOKEN, key_cache_seconds=0.2)
    gateway = TaskGateway(settings, _config(fake_openai, fakes, tmp_path_factory.mktemp("media")))
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def keys(gw: TaskGateway) -> dict[str, str]:
    """A chat key with $100 and a tasks key with 100000 credits, of one user each."""
    _, task_key = gw.user("100000")

    async def chat_key(db: Database) -> str:
        service = KeyService(db)
        user = await service.create_user(unique("fuzz"))
        billing = BillingService(db, LocalLimiter(), node_id="tests")
        await billing.credit(user.name, usd_to_units("100"))
        return (await service.create_key(user.name)).secret

    secrets = {"chat": gw._run(chat_key), "tasks": task_key}
    # Schemathesis sends each operation's credentials by its security scheme, and knows them
    # for what they are: it also sends the request without them, and with wrong ones.
    schema.config.auth.openapi.schemes.update(
        chatKey=HttpBearerAuthConfig(bearer=secrets["chat"]),
        chatApiKeyHeader=ApiKeyAuthConfig(api_key=secrets["chat"]),
        taskKey=HttpBearerAuthConfig(bearer=secrets["tasks"]),
        adminToken=HttpBearerAuthConfig(bearer=ADMIN_TOKEN),
    )
    return secrets


schema = schemathesis.openapi.from_dict(
    build(),
    config=schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": EXAMPLES, "deterministic": True},
            # Calibration steers link choice by earlier answers, which Hypothesis sees as a
            # strategy that changes between runs of the same example.
            "phases": {"stateful": {"link-calibration": False}},
        }
    ),
)


# Where the schema cannot say everything the gateway checks, schema-valid input may still be
# refused with a 400: those operations skip the positive data check and keep every other one.
BUSINESS_RULES = {
    # A message's content required by its role; sampling ranges and output caps per model.
    "createChatCompletion",
    "createMessage",
    # Each input item's own fields by its type, and the same per-model ranges.
    "createResponse",
    # Documented only to say how it refuses (the WebSocket transport is not offered).
    "responsesWebSocket",
    "countMessageTokens",
    # A model the catalog does not have, or of another kind; each model's own fields.
    "submitImage",
    "submitVideo",
    "submitAudio",
    # A duplicate name.
    "adminCreateUser",
    # A group the user may not use; a spend limit of zero.
    "adminCreateKey",
    # A zero amount; credits with more than 6 decimals; a balance past its cap.
    "adminCredit",
}


def excluded_checks(case: Any) -> list[Any]:
    if case.operation.definition.raw.get("operationId") in BUSINESS_RULES:
        return [checks.positive_data_acceptance]
    return []


def test_the_document_is_valid_openapi_3_1(gw: TaskGateway) -> None:
    response = httpx.get(gw.url + "/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.1")
    validate(document)
    codes = document["components"]["schemas"]["TaskErrorCode"]["enum"]
    assert 20005 in codes and 50001 in codes


def test_every_route_of_the_app_is_documented_and_nothing_else(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url), build_config({}))
    routes = {
        # Starlette's {name:path} (a parameter that may hold "/") is OpenAPI's {name}.
        (re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path), method.lower())
        for route in app.app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
    }
    documented = {
        (path, method)
        for path, item in build()["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch", "head", "options"}
    }
    # Starlette answers HEAD on every GET route by itself; the document lists HEAD only where
    # clients rely on it.
    assert {r for r in routes if r[1] != "head"} == {d for d in documented if d[1] != "head"}
    assert {d for d in documented if d[1] == "head"} <= routes


def _follow(link: dict[str, Any], response: httpx.Response) -> dict[str, str]:
    """A link's parameters, evaluated against ``response``: the document's links only use
    ``$response.body#/field``, alone or embedded as ``{...}`` in a string."""
    body = response.json()
    expression = re.compile(r"\{?\$response\.body#/(\w+)\}?")
    return {
        name: expression.sub(lambda found: str(body[found.group(1)]), value)
        for name, value in link["parameters"].items()
    }


def test_the_documents_links_lead_from_a_new_user_to_working_keys(
    gw: TaskGateway, fakes: TaskFakes
) -> None:
    paths = build()["paths"]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    user = httpx.post(gw.url + "/admin/users", headers=admin, json={"name": unique("linked")})
    assert user.status_code == 201
    user_links = paths["/admin/users"]["post"]["responses"]["201"]["links"]
    key_links = paths["/admin/users/{name}/keys"]["post"]["responses"]["201"]["links"]
    name = _follow(user_links["CreateKey"], user)["name"]

    chat = httpx.post(gw.url + f"/admin/users/{name}/keys", headers=admin, json={})
    assert chat.status_code == 201
    auth = _follow(key_links["ListModels"], chat)["header.Authorization"]
    models = httpx.get(gw.url + "/v1/models", headers={"Authorization": auth})
    assert models.status_code == 200 and models.json()["data"]

    credit = _follow(user_links["Credit"], user)["name"]
    body = {"amount": "100", "workspace": "tasks"}
    assert httpx.post(gw.url + f"/admin/users/{credit}/credit", headers=admin, json=body).is_success
    tasks = httpx.post(
        gw.url + f"/admin/users/{name}/keys", headers=admin, json={"workspace": "tasks"}
    )
    auth = _follow(key_links["SubmitImage"], tasks)["header.Authorization"]
    submitted = httpx.post(
        gw.url + "/api/v1/images/generations",
        headers={"Authorization": auth},
        json={"model": "gpt-image-2", "prompt": "a fox"},
    )
    assert submitted.status_code == 200
    submit_links = paths["/api/v1/images/generations"]["post"]["responses"]["200"]["links"]
    task_id = _follow(submit_links["GetTask"], submitted)["task_id"]
    polled = httpx.get(gw.url + f"/api/v1/tasks/{task_id}", headers={"Authorization": auth})
    assert polled.status_code == 200 and polled.json()["id"] == submitted.json()["id"]
    gw.wait(auth.removeprefix("Bearer "), task_id)

    key_id = _follow(key_links["RevokeKey"], tasks)["key_id"]
    assert httpx.delete(gw.url + f"/admin/keys/{key_id}", headers=admin).status_code == 200
    refused = httpx.get(gw.url + "/api/v1/tasks", headers={"Authorization": auth})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == 10004


def test_refusals_of_expired_and_restricted_keys_are_documented(gw: TaskGateway) -> None:
    """The key rule's 403s (an expired chat key, a tasks key restricted to another model) are
    statuses the fuzzing with valid keys never sees: each must still be in the document."""

    async def make(db: Database) -> tuple[str, str]:
        service = KeyService(db)
        user = await service.create_user(unique("refused"))
        past = datetime.now(UTC) - timedelta(days=1)
        expired = await service.create_key(user.name, controls=KeyControls(expires_at=past))
        restricted = await service.create_key(
            user.name, workspace="tasks", controls=KeyControls(allowed_models=["veo3.1-fast"])
        )
        return expired.secret, restricted.secret

    expired, restricted = gw._run(make)
    chat = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
    calls: list[tuple[str, str, str, dict[str, Any] | None]] = [
        ("GET", "/v1/models", expired, None),
        ("GET", "/v1/dashboard/billing/credit_grants", expired, None),
        ("GET", "/v1/dashboard/usage", expired, None),
        ("POST", "/v1/chat/completions", expired, chat),
        ("POST", "/v1/messages", expired, chat),
        ("POST", "/v1/responses", expired, {"model": "gpt-5.5", "input": "Hi"}),
        ("POST", "/v1/messages/count_tokens", expired, chat),
        ("POST", "/api/v1/images/generations", restricted, {"model": "gpt-image-2", "prompt": "x"}),
    ]
    conformance = [
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_headers_conformance,
        checks.response_schema_conformance,
    ]
    for method, path, key, body in calls:
        case = schema[path][method].Case(
            headers={"Authorization": f"Bearer {key}"}, **({"body": body} if body else {})
        )
        response = case.call_and_validate(base_url=gw.url, checks=conformance)
        assert response.status_code == 403, (path, response.text)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_documented_contract(
    case: Any, gw: TaskGateway, keys: dict[str, str]
) -> None:
    case.call_and_validate(base_url=gw.url, excluded_checks=excluded_checks(case))


def test_stateful_sequences_keep_the_contract(gw: TaskGateway, keys: dict[str, str]) -> None:
    failures: list[FailureGroup] = []

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": gw.url}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            try:
                case.validate_response(
                    response,
                    excluded_checks=excluded_checks(case),
                    transport_kwargs=kwargs or None,
                    recorder=getattr(self, "recorder", None),
                )
            except FailureGroup as failure:
                failures.append(failure)
                raise

    try:
        Sequences.run(
            settings=settings(
                max_examples=EXAMPLES * 2,
                stateful_step_count=10,
                # Generation only: replaying a sequence against a server that remembers the first
                # run (a name now taken, a key now revoked) cannot reproduce it.
                phases=[Phase.generate],
                derandomize=True,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
        )
    except Flaky:
        # For the same reason Hypothesis may find that a sequence took another path the second
        # time; that is the server's memory, not a failure. A check that failed still fails.
        if failures:
            raise failures[0] from None
