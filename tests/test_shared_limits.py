"""Two gateway processes on one Redis enforce one group limit between them."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import Gateway
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.redis


def test_rpm_is_shared_across_processes(
    tmp_path: Path, upstream: FakeOpenAI, gateway: Gateway, database_url: str
) -> None:
    config = tmp_path / "reapi.yaml"
    config.write_text(
        "channels:\n"
        f"  - {{name: fake, type: openai, base_url: '{upstream.base_url}', models: [gpt-5.5],"
        " groups: [team]}\n"
        "models:\n  gpt-5.5: {input_per_mtok: '1.25', output_per_mtok: '10.00'}\n"
        "groups:\n  team: {rpm: 4, max_concurrency: 10}\n"
    )
    _, key = gateway.user(groups=("team",), group="team", credit="1")
    env = {
        "REAPI_REDIS_URL": "redis://127.0.0.1:6379/0",
        "REAPI_REDIS_PREFIX": f"t{uuid.uuid4().hex}:",
    }
    nodes = [GatewayProcess(config, database_url, **env).start() for _ in range(2)]
    try:
        statuses = []
        for i in range(6):
            response = httpx.post(
                nodes[i % 2].url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "Hi"}]},
                timeout=30,
            )
            statuses.append(response.status_code)
            if response.status_code == 200:
                assert response.headers["x-ratelimit-remaining-requests"] == str(3 - i)
        assert statuses == [200, 200, 200, 200, 429, 429]
        assert len(upstream.requests) == 4
    finally:
        for node in nodes:
            node.stop()
