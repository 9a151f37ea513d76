"""A gateway with one channel of each wire format, for tests that must reach both translators:
``gpt-5.5`` on the fake's OpenAI face and ``claude-sonnet-4-6`` on its Anthropic face."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reapi.config import build_config
from reapi.settings import Settings
from tests.conftest import Gateway, start_gateway
from tests.fakes.openai_upstream import FakeOpenAI

OPENAI_MODEL = "gpt-5.5"
CLAUDE_MODEL = "claude-sonnet-4-6"


@pytest.fixture(scope="module")
def mixed(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Gateway]:
    config = build_config(
        {
            "channels": [
                {
                    "name": "anthropic-direct",
                    "type": "anthropic",
                    "base_url": fake_openai.anthropic_url,
                    "timeouts": {"first_byte": 3, "between_chunks": 3},
                    "api_key": "sk-ant-upstream",
                    "models": [CLAUDE_MODEL],
                },
                {
                    "name": "openai-compatible",
                    "type": "openai",
                    "base_url": fake_openai.base_url,
                    "timeouts": {"first_byte": 3, "between_chunks": 3},
                    "api_key": "sk-oa-upstream",
                    "models": [OPENAI_MODEL],
                },
            ],
            "models": {
                OPENAI_MODEL: {"input_per_mtok": "1.25", "output_per_mtok": "10.00"},
                CLAUDE_MODEL: {"input_per_mtok": "3", "output_per_mtok": "15"},
            },
        }
    )
    gateway = start_gateway(Settings(database_url=database_url), config)
    yield gateway
    gateway.server.stop()
