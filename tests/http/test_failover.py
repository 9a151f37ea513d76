"""A channel that cannot be connected to is skipped (nothing was sent); one that answered
with an error is not (the call may have reached it)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from reapi.app import create_app
from reapi.config import build_config
from reapi.settings import Settings
from tests.clients import openai_client
from tests.conftest import Gateway
from tests.fakes.openai_upstream import Fail, FakeOpenAI
from tests.fakes.server import UvicornThread, free_port

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def two_channel_gateway(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Gateway]:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    config = build_config(
        {
            "channels": [
                {
                    "name": "dead",
                    "type": "openai",
                    "base_url": dead,
                    "models": ["gpt-5.5"],
                    "priority": 0,
                },
                {
                    "name": "alive",
                    "type": "openai",
                    "base_url": fake_openai.base_url,
                    "models": ["gpt-5.5"],
                    "priority": 1,
                },
            ],
            "models": {"gpt-5.5": {"free": True}},
        }
    )
    settings = Settings(database_url=database_url)
    server = UvicornThread(lambda: create_app(settings, config), settings=settings).start()
    yield Gateway(server, settings)
    server.stop()


def test_unreachable_channel_fails_over(two_channel_gateway: Gateway, upstream: FakeOpenAI) -> None:
    client = openai_client(
        api_key=two_channel_gateway.key(), base_url=two_channel_gateway.url + "/v1", max_retries=0
    )
    reply = client.chat.completions.create(model="gpt-5.5", messages=HELLO)
    assert reply.choices[0].message.content
    assert len(upstream.requests) == 1


def test_a_channel_that_answered_is_never_retried(
    two_channel_gateway: Gateway, upstream: FakeOpenAI
) -> None:
    upstream.enqueue(Fail(503))
    client = openai_client(
        api_key=two_channel_gateway.key(), base_url=two_channel_gateway.url + "/v1", max_retries=0
    )
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-5.5", messages=HELLO)
    assert len(upstream.requests) == 1


def test_no_reachable_channel_is_502() -> None:
    config = build_config(
        {
            "channels": [
                {
                    "name": "dead",
                    "type": "openai",
                    "base_url": f"http://127.0.0.1:{free_port()}/v1",
                    "models": ["gpt-5.5"],
                }
            ],
            "models": {"gpt-5.5": {"free": True}},
        }
    )
    import asyncio
    import tempfile

    from reapi.services.keys import KeyService
    from reapi.storage import migrate
    from reapi.storage.db import Database

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/x.db"
        migrate.upgrade(url)

        async def key() -> str:
            db = Database(url)
            try:
                await KeyService(db).create_user("solo")
                return (await KeyService(db).create_key("solo")).secret
            finally:
                await db.dispose()

        secret = asyncio.run(key())
        server = UvicornThread(lambda: create_app(Settings(database_url=url), config)).start()
        try:
            client = openai_client(api_key=secret, base_url=server.url + "/v1", max_retries=0)
            with pytest.raises(openai.InternalServerError) as raised:
                client.chat.completions.create(model="gpt-5.5", messages=HELLO)
            assert raised.value.status_code == 502
            assert raised.value.code == "upstream_unreachable"
        finally:
            server.stop()
