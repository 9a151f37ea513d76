"""The one key rule, route by route: every state a key can be in (valid, revoked, expired, of the
other workspace, restricted to other models, its user without the group asked) against every
route that takes a key, on one real gateway serving both the chat and the task API.

Every route gets the same request whatever the key; only the key changes. A refusal must come
in the route's own envelope with its x-request-id, and must not reach an upstream; a key the
rule lets through must get the route's real answer (a restriction to other models or groups
refuses only the calls that name one)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from reapi.config import build_config
from reapi.money import credits_to_units, usd_to_units
from reapi.services.billing import BillingService
from reapi.services.keys import KeyControls, KeyService
from reapi.services.limits import LocalLimiter
from reapi.settings import Settings
from reapi.storage.db import Database
from tests.conftest import unique
from tests.fakes.openai_upstream import FakeOpenAI
from tests.task_gateway import TaskFakes, TaskGateway, creates, task_config_raw

Envelope = Literal["openai", "anthropic", "task"]
Workspace = Literal["chat", "tasks"]

CHAT_MODEL = "claude-sonnet-4-6"  # served by an Anthropic channel: count_tokens goes upstream
STATES = ["valid", "revoked", "expired", "wrong_workspace", "model_restricted", "group_restricted"]


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str  # "{task}" stands for a task of the key's user
    envelope: Envelope
    body: dict[str, Any] | None = None
    names_model: bool = False
    names_group: bool = False
    upstream_path: str | None = None  # where a chat call that passes reaches the fake upstream

    @property
    def workspace(self) -> Workspace:
        return "tasks" if self.envelope == "task" else "chat"


_CHAT = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "group": "vip"}
ROUTES = [
    Route(
        "chat.completions",
        "POST",
        "/v1/chat/completions",
        "openai",
        {**_CHAT, "max_tokens": 64},
        names_model=True,
        names_group=True,
        upstream_path="/v1/messages",
    ),
    Route(
        "messages",
        "POST",
        "/v1/messages",
        "anthropic",
        {**_CHAT, "max_tokens": 64},
        names_model=True,
        names_group=True,
        upstream_path="/v1/messages",
    ),
    Route(
        "count_tokens",
        "POST",
        "/v1/messages/count_tokens",
        "anthropic",
        _CHAT,
        names_model=True,
        names_group=True,
        upstream_path="/v1/messages/count_tokens",
    ),
    Route("models", "GET", "/v1/models", "openai"),
    Route("models.head", "HEAD", "/v1/models", "openai"),
    Route("credit_grants", "GET", "/v1/dashboard/billing/credit_grants", "openai"),
    Route("credit_grants.head", "HEAD", "/v1/dashboard/billing/credit_grants", "openai"),
    Route("usage", "GET", "/v1/dashboard/usage", "openai"),
    Route("usage.head", "HEAD", "/v1/dashboard/usage", "openai"),
    Route(
        "images",
        "POST",
        "/api/v1/images/generations",
        "task",
        {"model": "gpt-image-2", "prompt": "a fox"},
        names_model=True,
    ),
    Route(
        "videos",
        "POST",
        "/api/v1/videos/generations",
        "task",
        {"model": "veo3.1-fast", "prompt": "waves"},
        names_model=True,
    ),
    Route(
        "audio",
        "POST",
        "/api/v1/audio/generations",
        "task",
        {"model": "mureka-v9-song", "lyrics": "la la la"},
        names_model=True,
    ),
    Route("tasks", "GET", "/api/v1/tasks", "task"),
    Route("tasks.head", "HEAD", "/api/v1/tasks", "task"),
    Route("task", "GET", "/api/v1/tasks/{task}", "task"),
    Route("task.head", "HEAD", "/api/v1/tasks/{task}", "task"),
]


@dataclass(frozen=True)
class Refusal:
    status: int
    openai_code: str
    anthropic_type: str
    task_code: int | None  # None: the task API names no such thing
    says: str  # a fragment of the message, in every envelope
    task_status: int | None = None  # when the task API's code has another status

    def status_on(self, route: Route) -> int:
        return (self.task_status or self.status) if route.envelope == "task" else self.status


REVOKED = Refusal(401, "revoked_api_key", "authentication_error", 10004, "revoked")
# The task API keeps its documented 10003 (401) for an expired key.
EXPIRED = Refusal(403, "key_expired", "permission_error", 10003, "expired", task_status=401)
OTHER_WORKSPACE = Refusal(
    401, "invalid_api_key", "authentication_error", 10003, "key; this endpoint takes"
)
MODEL = Refusal(403, "model_not_allowed", "permission_error", 10006, "may not use model")
GROUP = Refusal(403, "group_not_allowed", "permission_error", None, "may not use group")


def refusal(state: str, route: Route) -> Refusal | None:
    """What the rule answers ``route`` for a key in ``state``; None when it lets it through."""
    if state == "revoked":
        return REVOKED
    if state == "expired":
        return EXPIRED
    if state == "wrong_workspace":
        return OTHER_WORKSPACE
    if state == "model_restricted" and route.names_model:
        return MODEL
    if state == "group_restricted" and route.names_group:
        return GROUP
    return None


@dataclass
class Keys:
    """Keys of two users: ``owner`` (groups default and vip) holds one key of each state in each
    workspace; ``plain`` (group default only) holds one key per workspace."""

    by_state: dict[tuple[str, Workspace], str]
    task_of: dict[str, str]  # key secret -> a task of that key's user

    def key(self, state: str, workspace: Workspace) -> str:
        if state == "wrong_workspace":
            return self.by_state["valid", "chat" if workspace == "tasks" else "tasks"]
        return self.by_state[state, workspace]


async def _make_keys(db: Database) -> dict[tuple[str, Workspace], str]:
    keys = KeyService(db)
    billing = BillingService(db, LocalLimiter(), node_id="tests")
    owner = (await keys.create_user(unique("owner"), ["default", "vip"])).name
    plain = (await keys.create_user(unique("plain"), ["default"])).name
    for name in (owner, plain):
        await billing.credit(name, usd_to_units("10"))
        await billing.credit(name, credits_to_units("100000"), workspace="tasks")
    past = datetime.now(UTC) - timedelta(minutes=1)
    only = {"chat": ["gpt-5.5"], "tasks": ["slow-video"]}
    made: dict[tuple[str, Workspace], str] = {}
    workspaces: tuple[Workspace, ...] = ("chat", "tasks")
    for workspace in workspaces:
        controls = {
            "valid": KeyControls(),
            "revoked": KeyControls(),
            "expired": KeyControls(expires_at=past),
            "model_restricted": KeyControls(allowed_models=only[workspace]),
        }
        for state, control in controls.items():
            new = await keys.create_key(owner, workspace=workspace, controls=control)
            if state == "revoked":
                await keys.revoke_key(new.key.id)
            made[state, workspace] = new.secret
        made["group_restricted", workspace] = (
            await keys.create_key(plain, workspace=workspace)
        ).secret
    return made


def _run_on(settings: Settings, work: Any) -> Any:
    async def main() -> Any:
        db = Database(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def fakes() -> Iterator[TaskFakes]:
    fakes = TaskFakes()
    yield fakes
    fakes.stop()


@pytest.fixture(scope="module")
def gw(
    fakes: TaskFakes,
    fake_openai: FakeOpenAI,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TaskGateway]:
    raw = task_config_raw(fakes, Path(tmp_path_factory.mktemp("media")))
    raw["channels"] += [
        {
            "name": "anthropic-direct",
            "type": "anthropic",
            "base_url": fake_openai.anthropic_url,
            "timeouts": {"first_byte": 3, "between_chunks": 3},
            "api_key": "sk-ant-upstream",
            "models": [CHAT_MODEL],
            "groups": ["default", "vip"],
        },
        {
            "name": "openai-compatible",
            "type": "openai",
            "base_url": fake_openai.base_url,
            "timeouts": {"first_byte": 3, "between_chunks": 3},
            "api_key": "sk-oa-upstream",
            "models": ["gpt-5.5"],
            "groups": ["default", "vip"],
        },
    ]
    raw["models"] |= {
        "gpt-5.5": {"input_per_mtok": "1.25", "output_per_mtok": "10.00"},
        CHAT_MODEL: {"input_per_mtok": "3", "output_per_mtok": "15"},
    }
    raw["groups"] = {"default": {}, "vip": {}}
    settings = Settings(database_url=database_url, key_cache_seconds=0.2)
    gateway = TaskGateway(settings, build_config(raw))
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def keys(gw: TaskGateway) -> Keys:
    made = _run_on(gw.settings, _make_keys)
    task_of = {}
    for state in ("valid", "group_restricted"):
        secret = made[state, "tasks"]
        submitted = gw.submit(secret, "images", {"model": "gpt-image-2", "prompt": "mine"})
        assert submitted.status_code == 200, submitted.text
        task_of[secret] = gw.wait(secret, submitted.json()["id"])["id"]
    # A key's user owns the task, whatever state the key is in.
    for state in ("revoked", "expired", "model_restricted"):
        task_of[made[state, "tasks"]] = task_of[made["valid", "tasks"]]
    return Keys(made, task_of)


@pytest.fixture(autouse=True)
def quiet_upstreams(fakes: TaskFakes, fake_openai: FakeOpenAI) -> None:
    fakes.reset()
    fake_openai.reset()


def call(gw: TaskGateway, keys: Keys, route: Route, key: str) -> httpx.Response:
    # The task route's path names a task of the key's own user; a key of the other workspace
    # asks for the task of the owner's valid key.
    task = keys.task_of.get(key, keys.task_of[keys.by_state["valid", "tasks"]])
    return gw.http.request(
        route.method,
        route.path.replace("{task}", task),
        json=route.body,
        headers={"Authorization": f"Bearer {key}"},
    )


def upstream_posts(fakes: TaskFakes, fake_openai: FakeOpenAI) -> int:
    task_creates = sum(creates(f) for f in (fakes.openai, fakes.fal, fakes.replicate, fakes.reapi))
    return len(fake_openai.requests) + task_creates


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("state", STATES)
def test_every_key_state_on_every_route(
    gw: TaskGateway,
    keys: Keys,
    fakes: TaskFakes,
    fake_openai: FakeOpenAI,
    state: str,
    route: Route,
) -> None:
    key = keys.key(state, route.workspace)
    response = call(gw, keys, route, key)
    request_id = response.headers.get("x-request-id", "")
    assert request_id.startswith("req_"), response.headers
    refused = refusal(state, route)
    if refused is None:
        assert_answered(gw, response, route, state, key, fakes, fake_openai)
        return
    assert upstream_posts(fakes, fake_openai) == 0
    status = refused.status_on(route)
    assert response.status_code == status, response.text
    if route.method == "HEAD":
        assert response.content == b""
        return
    body = response.json()
    if route.envelope == "openai":
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["code"] == refused.openai_code
        message = body["error"]["message"]
    elif route.envelope == "anthropic":
        assert body["type"] == "error" and body["request_id"] == request_id
        assert body["error"]["type"] == refused.anthropic_type
        message = body["error"]["message"]
    else:
        assert set(body) == {"error"} and body["error"]["request_id"] == request_id
        assert body["error"]["code"] == refused.task_code
        message = body["error"]["message"]
    assert refused.says in message
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def assert_answered(
    gw: TaskGateway,
    response: httpx.Response,
    route: Route,
    state: str,
    key: str,
    fakes: TaskFakes,
    fake_openai: FakeOpenAI,
) -> None:
    assert response.status_code == 200, response.text
    if route.method == "HEAD":
        assert response.content == b"" and upstream_posts(fakes, fake_openai) == 0
        return
    body = response.json()
    if route.upstream_path is not None:
        assert [r.path for r in fake_openai.requests] == [route.upstream_path]
    if route.name == "chat.completions":
        assert body["model"] == CHAT_MODEL and body["choices"][0]["message"]["content"]
    elif route.name == "messages":
        assert body["type"] == "message" and body["model"] == CHAT_MODEL
    elif route.name == "count_tokens":
        assert body == {"input_tokens": 42}
    elif route.name == "models":
        ids = [m["id"] for m in body["data"]]
        if state == "model_restricted":
            assert ids == ["gpt-5.5"]  # only what the key may use
        else:
            assert CHAT_MODEL in ids
    elif route.name == "credit_grants":
        assert body["object"] == "credit_summary"
    elif route.name == "usage":
        assert body["object"] == "list"
    elif route.name == "tasks":
        assert body["object"] == "list" and body["data"]
    elif route.name == "task":
        assert body["id"] == response.request.url.path.rsplit("/", 1)[1]
    else:
        # A submit: the task was accepted; let it finish so no upstream call outlives the test.
        assert body["status"] == "processing"
        assert gw.wait(key, body["id"])["status"] == "completed"
        assert upstream_posts(fakes, fake_openai) >= 1


def test_count_tokens_for_a_model_off_the_key_list_is_refused_not_estimated(
    gw: TaskGateway, fake_openai: FakeOpenAI
) -> None:
    """The case reported: a key for Claude models only asked a count for gpt-5.5 (a model with
    no Anthropic channel, so the count would have been estimated without any upstream)."""

    async def make(db: Database) -> str:
        keys = KeyService(db)
        user = await keys.create_user(unique("claudist"))
        controls = KeyControls(allowed_models=[CHAT_MODEL])
        return (await keys.create_key(user.name, controls=controls)).secret

    key = _run_on(gw.settings, make)
    response = gw.http.post(
        "/v1/messages/count_tokens",
        json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "Hi"}]},
        headers={"x-api-key": key},
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["type"] == "permission_error"
    assert "may not use model 'gpt-5.5'" in response.json()["error"]["message"]
    allowed = gw.http.post(
        "/v1/messages/count_tokens",
        json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Hi"}]},
        headers={"x-api-key": key},
    )
    assert allowed.json() == {"input_tokens": 42}
