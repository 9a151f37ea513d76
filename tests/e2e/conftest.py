"""Fixtures for end-to-end tests with real client programs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from reapi.config import build_config
from reapi.settings import Settings
from tests.conftest import Gateway, start_gateway
from tests.fakes.openai_upstream import FakeOpenAI

# npm packages the tests install on first use live in the checkout (ignored by git, removed by
# `make clean`), so a run reads nothing another checkout left behind; REAPI_TEST_CACHE may
# point elsewhere to share them.
CACHE = Path(os.environ.get("REAPI_TEST_CACHE") or Path(__file__).parents[2] / ".test-cache")


@pytest.fixture(scope="module")
def gateway_for_claude(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Gateway]:
    config = build_config(
        {
            "channels": [
                {
                    "name": "anthropic",
                    "type": "anthropic",
                    "base_url": fake_openai.anthropic_url,
                    "models": ["claude-sonnet-4-6"],
                },
                {
                    "name": "openai-compatible",
                    "type": "openai",
                    "base_url": fake_openai.base_url,
                    "models": ["claude-opus-4-7"],
                },
            ],
            "models": {
                "claude-sonnet-4-6": {"input_per_mtok": "3", "output_per_mtok": "15"},
                "claude-opus-4-7": {"input_per_mtok": "5", "output_per_mtok": "25"},
            },
        }
    )
    gateway = start_gateway(Settings(database_url=database_url), config)
    yield gateway
    gateway.server.stop()
