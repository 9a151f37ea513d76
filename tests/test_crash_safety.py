"""kill -9 the gateway with calls in flight: after a restart the books still balance, every call
that completed for its client is charged exactly once, and no call is charged twice."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import httpx

from reapi.services.billing import UsageQuery
from tests.conftest import Gateway
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway_process import REAPI, GatewayProcess


def write_config(path: Path, upstream: FakeOpenAI) -> Path:
    path.write_text(
        "channels:\n"
        f"  - {{name: fake, type: openai, base_url: '{upstream.base_url}', models: [gpt-5.5]}}\n"
        "models:\n  gpt-5.5: {input_per_mtok: '1.25', output_per_mtok: '10.00'}\n"
    )
    return path


def test_kill_9_mid_flight_then_restart(
    tmp_path: Path, upstream: FakeOpenAI, gateway: Gateway, database_url: str
) -> None:
    config = write_config(tmp_path / "reapi.yaml", upstream)
    name, key = gateway.user(credit="5")
    env = {"REAPI_HOLD_OWNER_TIMEOUT": "1"}
    first = GatewayProcess(config, database_url, **env).start()
    completed: list[str] = []
    lock = threading.Lock()

    def call(stream: bool, slow: bool) -> None:
        body = {
            "model": "gpt-5.5",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": stream,
        }
        try:
            response = httpx.post(
                first.url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json=body,
                timeout=30,
            )
        except httpx.TransportError:
            return  # cut by the kill: the client never got an answer
        done = response.status_code == 200 and (not stream or b"data: [DONE]" in response.content)
        if done:
            with lock:
                completed.append(response.headers["x-request-id"])

    # Quick calls finish before the kill; slow streams are cut by it.
    for _ in range(6):
        upstream.enqueue(Reply())
    for _ in range(6):
        upstream.enqueue(Reply(text=" ".join(["w"] * 400), interval=0.02))
    threads = [threading.Thread(target=call, args=(i % 2 == 0, False)) for i in range(6)]
    for thread in threads:
        thread.start()
        thread.join()
    slow = [threading.Thread(target=call, args=(True, True)) for _ in range(6)]
    for thread in slow:
        thread.start()
    time.sleep(1.0)
    first.kill()
    for thread in slow:
        thread.join()
    assert len(completed) == 6

    second = GatewayProcess(config, database_url, **env).start()
    try:
        deadline = time.monotonic() + 60  # each verify starts a process: slow on a busy machine
        while True:
            verify = subprocess.run(
                [REAPI, "ledger", "verify"],
                env={**second._env},
                capture_output=True,
                text=True,
                timeout=60,
            )
            if verify.returncode == 0:
                break
            assert time.monotonic() < deadline, verify.stderr
            time.sleep(0.5)
    finally:
        second.stop()
    state = gateway.balance(name)
    assert state.held == 0
    records = gateway.billing(lambda b: b.usage(name, UsageQuery()))
    charged = {r.request_id: r.cost for r in records if r.cost}
    assert set(completed) <= set(charged)
    assert sum(charged.values()) == 5 * 10**9 - state.balance
    assert {r.outcome for r in records} <= {"ok", "abandoned", "client_gone"}
