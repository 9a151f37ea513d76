"""A gateway serving chat models (through the fake OpenAI upstream) and task models (through
the fake task upstreams) whose ``public_url`` is its own address, so the examples its pages
print can be run as they are."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from reapi.app import create_app
from reapi.config import Config, build_config
from reapi.settings import Settings
from tests.conftest import Gateway
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import UvicornThread, free_port
from tests.task_gateway import TaskFakes, TaskGateway, task_config_raw


def site_config_raw(
    openai_url: str, fakes: TaskFakes, media: Any, public_url: str
) -> dict[str, Any]:
    raw = task_config_raw(fakes, media)
    raw["public_url"] = public_url
    raw["channels"].append(
        {
            "name": "fake-openai",
            "type": "openai",
            "base_url": openai_url,
            "models": ["gpt-5.5", "claude-sonnet-4-6", "vendor/tiny-1"],
            "groups": ["default", "vip"],
        }
    )
    raw["models"].update(
        {
            "gpt-5.5": {"input_per_mtok": "1.25", "output_per_mtok": "10.00"},
            "claude-sonnet-4-6": {
                "input_per_mtok": "3",
                "output_per_mtok": "15",
                "cached_input_per_mtok": "0.30",
                "cache_write_per_mtok": "3.75",
            },
            # An operator's own model: a name with a slash, and a price finer than a cent.
            "vendor/tiny-1": {
                "owned_by": "vendor",
                "input_per_mtok": "0.0375",
                "output_per_mtok": "0.15",
                "context_window": 32000,
                "max_output_tokens": 8000,
            },
        }
    )
    raw["groups"] = {
        "default": {"rpm": 600, "tpm": 2000000, "max_concurrency": 20},
        "vip": {"price_ratio": "1.5", "rpm": 6000},
    }
    return raw


@dataclass
class Site:
    url: str
    config: Config
    chat: Gateway
    tasks: TaskGateway
    fakes: TaskFakes


@pytest.fixture(scope="module")
def fakes() -> Iterator[TaskFakes]:
    fakes = TaskFakes()
    yield fakes
    fakes.stop()


@pytest.fixture(scope="module")
def site(
    fake_openai: FakeOpenAI,
    fakes: TaskFakes,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    media = tmp_path_factory.mktemp("media")
    config = build_config(site_config_raw(fake_openai.base_url, fakes, media, url))
    settings = Settings(database_url=database_url, key_cache_seconds=0.2)
    server = UvicornThread(lambda: create_app(settings, config), port=port).start()
    yield Site(
        url, config, Gateway(server, settings), TaskGateway(settings, config, serve=False), fakes
    )
    server.stop()
