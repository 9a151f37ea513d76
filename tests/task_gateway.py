"""A running task gateway for end-to-end tests: the four fake task upstreams and a source
media host on 127.0.0.1, a real uvicorn server with embedded workers, and helpers to make
users, read balances and poll tasks over plain HTTP (httpx), as a client would."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from sqlalchemy import select

from reapi.app import create_app
from reapi.config import Config, build_config
from reapi.money import credits_to_units
from reapi.services.billing import BillingService
from reapi.services.keys import KeyService
from reapi.services.limits import LocalLimiter
from reapi.settings import Settings
from reapi.storage.db import Database
from reapi.storage.tables import LedgerEntry
from tests.conftest import unique
from tests.fakes.server import LoopThread, UvicornThread
from tests.fakes.task_upstreams import (
    Behaviour,
    FakeFalQueue,
    FakeMediaHost,
    FakeOpenAIImages,
    FakeReapiTasks,
    FakeReplicate,
    FakeUpstream,
    wav_bytes,
)
from tests.task_prices import OPERATOR_PRICES

WEBHOOK_SECRET = "whsec_test_secret"


class TaskFakes:
    """Every fake task upstream, each on its own port, served from one background loop."""

    def __init__(self) -> None:
        self.loop = LoopThread()
        self.openai = self._start(FakeOpenAIImages(Behaviour(media="image")))
        self.fal = self._start(FakeFalQueue(Behaviour(media="video")))
        self.replicate = self._start(FakeReplicate(Behaviour(media="video")))
        self.reapi = self._start(FakeReapiTasks(Behaviour(media="audio", outputs=2)))
        self.media = FakeMediaHost(
            {"song.wav": (wav_bytes(61.5), "audio/wav"), "short.wav": (wav_bytes(2), "audio/wav")}
        )
        self.loop.call(self.media.__aenter__())

    def _start(self, fake: FakeUpstream) -> Any:
        return self.loop.call(fake.start())

    def reset(self) -> None:
        for fake, media, outputs in (
            (self.openai, "image", 1),
            (self.fal, "video", 1),
            (self.replicate, "video", 1),
            (self.reapi, "audio", 2),
        ):
            fake.behaviour = Behaviour(media=media, outputs=outputs)  # type: ignore[arg-type]
            fake.requests.clear()

    def stop(self) -> None:
        for fake in (self.openai, self.fal, self.replicate, self.reapi):
            self.loop.call(fake.close())
        self.loop.call(self.media.__aexit__())
        self.loop.stop()


class WebhookReceiver:
    """Records every webhook delivery; answers with the statuses queued in ``answers`` first."""

    def __init__(self, loop: LoopThread) -> None:
        self.loop = loop
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> WebhookReceiver:
        async def handle(request: web.Request) -> web.Response:
            self.deliveries.append((dict(request.headers), await request.read()))
            return web.Response(status=self.answers.pop(0) if self.answers else 204)

        async def boot() -> None:
            app = web.Application()
            app.router.add_post("/hook", handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}/hook"

        self.loop.call(boot())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self.loop.call(self._runner.cleanup())


def creates(fake: FakeUpstream) -> int:
    """How many create calls (POSTs) a fake received."""
    return sum(1 for r in fake.requests if r.method == "POST")


def task_config_raw(fakes: TaskFakes, media_dir: Path, **tasks: Any) -> dict[str, Any]:
    return {
        "channels": [
            {"name": "oai-images", "type": "openai_images", "base_url": fakes.openai.base_url,
             "api_key": "test-key", "models": ["gpt-image-2"]},
            {"name": "fal", "type": "fal", "base_url": fakes.fal.base_url, "api_key": "test-key",
             "models": ["veo3.1-fast", "slow-video"],
             "model_map": {"veo3.1-fast": "fal-ai/veo3.1/fast", "slow-video": "fal-ai/slow/v"}},
            {"name": "replicate", "type": "replicate", "base_url": fakes.replicate.base_url,
             "api_key": "test-key", "models": ["veo3.1-fast-official"],
             "model_map": {"veo3.1-fast-official": "google/veo-3.1-fast"}},
            {"name": "partner", "type": "reapi", "base_url": fakes.reapi.base_url + "/api/v1",
             "api_key": "test-key",
             "models": ["mureka-v9-song", "audio-stem-separator", "doubao-seedance-2.0"]},
        ],
        "models": {
            **OPERATOR_PRICES,
            # An operator-added model with a short deadline, for the timeout path.
            "slow-video": {
                "kind": "video", "channel_type": "fal", "timeout_seconds": 2,
                "billing": {"unit": "generation", "credits": "7.5"},
                "schema": {"prompt": {"type": "string", "required": True}},
            },
        },
        "tasks": {
            "media_dir": str(media_dir),
            "allow_private": ["127.0.0.1"],
            "poll_interval": 0.05,
            "poll_max_interval": 0.2,
            "lease_seconds": 1.5,
            "webhook_secret": WEBHOOK_SECRET,
            "webhook_backoff": 0.1,
            **tasks,
        },
    }  # fmt: skip


def task_config(fakes: TaskFakes, media_dir: Path, **tasks: Any) -> Config:
    return build_config(task_config_raw(fakes, media_dir, **tasks))


class TaskGateway:
    def __init__(self, settings: Settings, config: Config, *, serve: bool = True) -> None:
        self.settings = settings
        self.config = config
        self.server = (
            UvicornThread(lambda: create_app(settings, config), settings=settings)
            if serve
            else None
        )
        if self.server is not None:
            self.server.start()
            self.url = self.server.url
            self.http = httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        if self.server is not None:
            self.http.close()
            self.server.stop()

    def _run(self, work: Any) -> Any:
        async def main() -> Any:
            db = Database(self.settings.database_url)
            try:
                return await work(db)
            finally:
                await db.dispose()

        return asyncio.run(main())

    def user(
        self, credits: str | None = "1000", *, models: list[str] | None = None
    ) -> tuple[str, str]:
        """A new user with a tasks key and ``credits`` in the tasks workspace: (name, key)."""

        async def make(db: Database) -> tuple[str, str]:
            from reapi.services.keys import KeyControls

            keys = KeyService(db)
            user = await keys.create_user(unique("tasker"))
            if credits is not None:
                billing = BillingService(db, LocalLimiter(), node_id="tests")
                await billing.credit(user.name, credits_to_units(credits), workspace="tasks")
            new = await keys.create_key(
                user.name, workspace="tasks", controls=KeyControls(allowed_models=models)
            )
            return user.name, new.secret

        return self._run(make)  # type: ignore[no-any-return]

    def chat_key(self, user: str) -> str:
        async def make(db: Database) -> str:
            return (await KeyService(db).create_key(user, workspace="chat")).secret

        return self._run(make)  # type: ignore[no-any-return]

    def revoke(self, secret: str) -> None:
        async def work(db: Database) -> None:
            from reapi.services.keys import hash_secret
            from reapi.storage import accounts

            keys = KeyService(db)
            async with db.session() as session:
                found = await accounts.key_with_user_by_hash(session, hash_secret(secret))
            assert found is not None
            await keys.revoke_key(found[0].id)

        self._run(work)

    def balance(self, user: str) -> int:
        """The user's tasks balance in money units."""

        async def read(db: Database) -> int:
            state = await BillingService(db, LocalLimiter(), node_id="tests").balance(user, "tasks")
            return state.balance

        return self._run(read)  # type: ignore[no-any-return]

    def ledger(self, task_id: str) -> list[tuple[str, int]]:
        """(kind, amount) of every ledger row keyed by the task id."""

        async def read(db: Database) -> list[tuple[str, int]]:
            async with db.session() as session:
                rows = await session.execute(
                    select(LedgerEntry.kind, LedgerEntry.amount)
                    .where(LedgerEntry.request_id == task_id)
                    .order_by(LedgerEntry.id)
                )
                return [(r[0], int(r[1])) for r in rows]

        return self._run(read)  # type: ignore[no-any-return]

    def verify(self) -> list[str]:
        async def check(db: Database) -> list[str]:
            return await BillingService(db, LocalLimiter(), node_id="tests").verify()

        return self._run(check)  # type: ignore[no-any-return]

    def submit(self, key: str, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return self.http.post(
            f"/api/v1/{path}/generations",
            json=body,
            headers={"Authorization": f"Bearer {key}", **headers},
        )

    def get(self, key: str, task_id: str) -> httpx.Response:
        return self.http.get(f"/api/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"})

    def wait(self, key: str, task_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll like the quickstart does until the task ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task: dict[str, Any] = self.get(key, task_id).json()
            if task["status"] != "processing":
                return task
            time.sleep(0.05)
        raise AssertionError(f"task {task_id} still processing after {timeout} s")
