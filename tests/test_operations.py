"""What an operator does to running `reapi serve` processes: probes, signals, metrics.

Every test here runs real `reapi serve` processes (one, or a supervisor and two workers) on the
suite's database, in front of the fake upstream.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from reapi.services.billing import UsageQuery
from tests.conftest import Gateway, unique
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.server import free_port
from tests.fakes.tcp_proxy import TcpProxy
from tests.gateway_process import REAPI, GatewayProcess

CHAT = "/v1/chat/completions"


def write_config(path: Path, upstream: FakeOpenAI, models: tuple[str, ...] = ("gpt-5.5",)) -> Path:
    prices = {"gpt-5.5": ("1.25", "10.00"), "gpt-5.4": ("0.75", "4.50")}
    path.write_text(
        "channels:\n"
        f"  - {{name: fake, type: openai, base_url: '{upstream.base_url}', "
        f"models: [{', '.join(models)}]}}\n"
        "models:\n"
        + "".join(
            f"  {m}: {{input_per_mtok: '{prices[m][0]}', output_per_mtok: '{prices[m][1]}'}}\n"
            for m in models
        )
    )
    return path


@pytest.fixture
def running() -> Iterator[Callable[[GatewayProcess], GatewayProcess]]:
    """Start gateway processes; whatever a test leaves running is stopped after it."""
    started: list[GatewayProcess] = []

    def start(process: GatewayProcess) -> GatewayProcess:
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def resume() -> Iterator[threading.Event]:
    """Lets go of the streams the fake upstream holds: when the test says, and at its end
    whatever happened (before ``running`` stops the gateways, which would wait for them)."""
    event = threading.Event()
    yield event
    event.set()


def eventually(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def chat(url: str, key: str, model: str = "gpt-5.5") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    return httpx.post(url + CHAT, headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30)


def models(url: str, key: str) -> set[str]:
    response = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return {m["id"] for m in response.json()["data"]}


def ledger_verify(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REAPI, "ledger", "verify"],
        env={**os.environ, "REAPI_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


# /readyz -------------------------------------------------------------------------------------


def test_readyz_is_ready_when_the_database_and_redis_answer(
    tmp_path: Path, upstream: FakeOpenAI, database_url: str, running: Callable[..., GatewayProcess]
) -> None:
    config = write_config(tmp_path / "reapi.yaml", upstream)
    alone = running(GatewayProcess(config, database_url))
    answer = httpx.get(alone.url + "/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "checks": {"database": "ok"}}

    shared = running(
        GatewayProcess(
            config,
            database_url,
            REAPI_REDIS_URL="redis://127.0.0.1:6379/0",
            REAPI_REDIS_PREFIX=unique("ops-ready-") + ":",
        )
    )
    answer = httpx.get(shared.url + "/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_names_an_unreachable_redis_and_liveness_stays_up(
    tmp_path: Path, upstream: FakeOpenAI, database_url: str, running: Callable[..., GatewayProcess]
) -> None:
    config = write_config(tmp_path / "reapi.yaml", upstream)
    nothing_there = free_port()
    gateway = running(
        GatewayProcess(config, database_url, REAPI_REDIS_URL=f"redis://127.0.0.1:{nothing_there}")
    )
    answer = httpx.get(gateway.url + "/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "unready", "checks": {"database": "ok", "redis": "failed"}}
    assert httpx.get(gateway.url + "/healthz").status_code == 200
    # The reason is the operator's to read, in the log, not the prober's.
    eventually(lambda: "readiness: redis failed" in gateway.log.read_text(), "the reason logged")
    assert str(nothing_there) not in answer.text


def test_readyz_follows_the_database_away_and_back(
    tmp_path: Path, upstream: FakeOpenAI, database_url: str, running: Callable[..., GatewayProcess]
) -> None:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("an unreachable database needs PostgreSQL (REAPI_TEST_DATABASE_URL)")
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    try:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        config = write_config(tmp_path / "reapi.yaml", upstream)
        gateway = running(GatewayProcess(config, proxied))
        assert httpx.get(gateway.url + "/readyz").status_code == 200

        proxy.cut()  # now nothing listens where the gateway's database is
        answer = httpx.get(gateway.url + "/readyz", timeout=10)
        assert answer.status_code == 503
        assert answer.json() == {"status": "unready", "checks": {"database": "failed"}}
        assert httpx.get(gateway.url + "/healthz").status_code == 200

        proxy.restore()
        eventually(
            lambda: httpx.get(gateway.url + "/readyz", timeout=10).status_code == 200,
            "ready again once the database is back",
        )
    finally:
        proxy.stop()


# Pools ---------------------------------------------------------------------------------------


def test_pool_settings_bound_a_process_s_postgres_connections(
    tmp_path: Path,
    upstream: FakeOpenAI,
    gateway: Gateway,
    database_url: str,
    running: Callable[..., GatewayProcess],
    resume: threading.Event,
) -> None:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("connection pools are PostgreSQL's (REAPI_TEST_DATABASE_URL)")
    config = write_config(tmp_path / "reapi.yaml", upstream)
    key = gateway.key()
    pools = {"REAPI_DB_POOL_SIZE": "1", "REAPI_DB_MAX_OVERFLOW": "0", "REAPI_HOT_POOL_SIZE": "2"}
    server = running(GatewayProcess(config, database_url, **pools))
    assert server.process is not None
    for _ in range(16):
        upstream.enqueue(Reply(resume=resume))
    answers: list[bool] = []

    def call() -> None:
        body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
        headers = {"Authorization": f"Bearer {key}"}
        answer = httpx.post(server.url + CHAT, headers=headers, json=body, timeout=60)
        answers.append(answer.status_code == 200 and b"data: [DONE]" in answer.content)

    def postgres_connections() -> int:
        assert server.process is not None
        return sum(
            1
            for conn in psutil.Process(server.process.pid).net_connections(kind="tcp")
            if conn.raddr and conn.raddr.port == (url.port or 5432)
        )

    calls = [threading.Thread(target=call) for _ in range(16)]
    for thread in calls:
        thread.start()
    eventually(lambda: len(upstream.requests) >= 16, "16 streams held by the upstream")
    during = postgres_connections()
    resume.set()
    for thread in calls:
        thread.join(60)
    assert answers == [True] * 16
    # 16 holds were placed and 16 settlements written through at most 1 + 0 + 2 connections.
    assert 1 <= during <= 3
    assert postgres_connections() <= 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REAPI_HOT_POOL_SIZE", "0"),
        ("REAPI_DB_MAX_OVERFLOW", "-1"),
        ("REAPI_SHUTDOWN_TIMEOUT", "x"),
    ],
)
def test_a_bad_pool_or_shutdown_setting_stops_the_cli_in_one_line(
    name: str, value: str, database_url: str
) -> None:
    run = subprocess.run(
        [REAPI, "migrate"],
        env={**os.environ, "REAPI_DATABASE_URL": database_url, name: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "bad environment setting" in run.stderr
    assert "Traceback" not in run.stderr


# SIGTERM -------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_a_stream_finish_settles_it_refuses_new_connections_and_exits_0(
    workers: int,
    tmp_path: Path,
    upstream: FakeOpenAI,
    gateway: Gateway,
    database_url: str,
    running: Callable[..., GatewayProcess],
    resume: threading.Event,
) -> None:
    config = write_config(tmp_path / "reapi.yaml", upstream)
    name, key = gateway.user(credit="5")
    server = running(GatewayProcess(config, database_url, workers=workers))
    upstream.enqueue(Reply(text=" ".join(["word"] * 40), interval=0.01, resume=resume))
    first_chunk = threading.Event()
    received: list[bytes] = []
    ids: list[str] = []

    def stream() -> None:
        body = {
            "model": "gpt-5.5",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": True,
        }
        with httpx.stream(
            "POST",
            server.url + CHAT,
            headers={"Authorization": f"Bearer {key}"},
            json=body,
            timeout=60,
        ) as response:
            ids.append(response.headers["x-request-id"])
            for chunk in response.iter_bytes():
                received.append(chunk)
                first_chunk.set()

    client = threading.Thread(target=stream)
    client.start()
    assert first_chunk.wait(30)
    server.signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            httpx.get(server.url + "/healthz", timeout=5)
        except httpx.ConnectError:
            return True
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # Accepted just as the stop began and closed before its request was read (never
            # processed): the moment of the switch, not yet the drain's steady state.
            return False
        return False

    # The stream is still waiting on the upstream: this is the drain, and it turns callers away.
    eventually(refused, "a new connection refused while the stream drains")
    assert client.is_alive()
    assert server.process is not None and server.process.poll() is None

    resume.set()
    client.join(60)
    body = b"".join(received)
    assert b"data: [DONE]" in body
    assert body.count(b"word") == 40
    assert server.process.wait(60) == 0

    records = gateway.billing(lambda b: b.usage(name, UsageQuery()))
    assert [(r.request_id, r.outcome) for r in records] == [(ids[0], "ok")]
    assert records[0].cost > 0
    state = gateway.balance(name)
    assert state.held == 0
    assert state.balance == 5 * 10**9 - records[0].cost
    verify = ledger_verify(database_url)
    assert verify.returncode == 0, verify.stderr


def test_a_stream_still_running_at_the_shutdown_deadline_is_cut_and_settled_once(
    tmp_path: Path,
    upstream: FakeOpenAI,
    gateway: Gateway,
    database_url: str,
    running: Callable[..., GatewayProcess],
    resume: threading.Event,
) -> None:
    config = write_config(tmp_path / "reapi.yaml", upstream)
    name, key = gateway.user(credit="5")
    server = running(GatewayProcess(config, database_url, REAPI_SHUTDOWN_TIMEOUT="1"))
    # The upstream sends one chunk and then nothing until the test ends: past any deadline.
    upstream.enqueue(Reply(text=" ".join(["word"] * 20), resume=resume))
    first_chunk = threading.Event()
    received: list[bytes] = []

    def stream() -> None:
        body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
        headers = {"Authorization": f"Bearer {key}"}
        try:
            with httpx.stream(
                "POST", server.url + CHAT, headers=headers, json=body, timeout=60
            ) as response:
                for chunk in response.iter_bytes():
                    received.append(chunk)
                    first_chunk.set()
        except httpx.TransportError:
            pass  # cut: what matters is what was charged

    client = threading.Thread(target=stream)
    client.start()
    assert first_chunk.wait(30)
    server.signal(signal.SIGTERM)
    assert server.process is not None
    assert server.process.wait(60) == 0
    client.join(60)
    assert b"data: [DONE]" not in b"".join(received)

    records = gateway.billing(lambda b: b.usage(name, UsageQuery()))
    assert [r.outcome for r in records] == ["client_gone"]
    assert records[0].cost > 0  # the prompt and the output sent before the cut
    state = gateway.balance(name)
    assert state.held == 0
    assert state.balance == 5 * 10**9 - records[0].cost
    verify = ledger_verify(database_url)
    assert verify.returncode == 0, verify.stderr


# SIGHUP --------------------------------------------------------------------------------------


def test_sighup_reloads_every_worker_and_refuses_a_broken_config(
    tmp_path: Path,
    upstream: FakeOpenAI,
    gateway: Gateway,
    database_url: str,
    running: Callable[..., GatewayProcess],
) -> None:
    config = write_config(tmp_path / "reapi.yaml", upstream)
    key = gateway.key()
    server = running(GatewayProcess(config, database_url, workers=2, REAPI_LOG_LEVEL="INFO"))
    assert models(server.url, key) == {"gpt-5.5"}

    write_config(config, upstream, ("gpt-5.5", "gpt-5.4"))
    server.signal(signal.SIGHUP)
    eventually(
        lambda: "every worker serves the new config" in server.log.read_text(),
        "both workers replaced",
        seconds=120,
    )
    for _ in range(10):  # new connections, whichever worker takes them
        assert models(server.url, key) == {"gpt-5.5", "gpt-5.4"}
    assert chat(server.url, key, "gpt-5.4").status_code == 200

    good = config.read_text()
    config.write_text(good + "groups: {default: {rpm: many}}\n")
    server.signal(signal.SIGHUP)
    eventually(lambda: "refused, the running config stays" in server.log.read_text(), "refused")
    log = server.log.read_text()
    assert f"config {config} refused" in log
    assert "rpm: Input should be a valid integer" in log
    assert server.process is not None and server.process.poll() is None
    for _ in range(10):
        assert models(server.url, key) == {"gpt-5.5", "gpt-5.4"}
        assert chat(server.url, key, "gpt-5.4").status_code == 200
    # Workers started after the refusal (here: once a worker dies) read the validated copy.
    workers = worker_processes(server)
    assert len(workers) == 2
    workers[0].kill()
    eventually(
        lambda: len(worker_processes(server)) == 2 and workers[0] not in worker_processes(server),
        "the dead worker replaced",
    )
    eventually(lambda: _answers(server.url, key), "the replacement serving")
    for _ in range(10):
        assert models(server.url, key) == {"gpt-5.5", "gpt-5.4"}


def test_sighup_reloads_one_process_in_place_while_a_stream_runs_on(
    tmp_path: Path,
    upstream: FakeOpenAI,
    gateway: Gateway,
    database_url: str,
    running: Callable[..., GatewayProcess],
    resume: threading.Event,
) -> None:
    config = write_config(tmp_path / "reapi.yaml", upstream)
    name, key = gateway.user(credit="5")
    server = running(GatewayProcess(config, database_url, REAPI_LOG_LEVEL="INFO"))
    assert server.process is not None
    pid = server.process.pid
    upstream.enqueue(Reply(text=" ".join(["word"] * 20), resume=resume))
    first_chunk = threading.Event()
    received: list[bytes] = []

    def stream() -> None:
        body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.stream("POST", server.url + CHAT, headers=headers, json=body, timeout=60) as r:
            for chunk in r.iter_bytes():
                received.append(chunk)
                first_chunk.set()

    client = threading.Thread(target=stream)
    client.start()
    assert first_chunk.wait(30)

    write_config(config, upstream, ("gpt-5.5", "gpt-5.4"))
    server.signal(signal.SIGHUP)
    eventually(lambda: "served with the new config" in server.log.read_text(), "reloaded")
    assert models(server.url, key) == {"gpt-5.5", "gpt-5.4"}
    assert chat(server.url, key, "gpt-5.4").status_code == 200
    assert client.is_alive()  # the stream started before the reload is still running

    resume.set()
    client.join(60)
    assert b"data: [DONE]" in b"".join(received)
    records = gateway.billing(lambda b: b.usage(name, UsageQuery()))
    assert sorted(r.model for r in records if r.cost > 0) == ["gpt-5.4", "gpt-5.5"]

    config.write_text("channels: [\n")
    server.signal(signal.SIGHUP)
    eventually(lambda: "refused, the running config stays" in server.log.read_text(), "refused")
    assert "is not valid YAML" in server.log.read_text()
    assert models(server.url, key) == {"gpt-5.5", "gpt-5.4"}
    assert chat(server.url, key, "gpt-5.5").status_code == 200
    assert server.process.pid == pid and server.process.poll() is None

    server.signal(signal.SIGTERM)
    assert server.process.wait(60) == 0
    verify = ledger_verify(database_url)
    assert verify.returncode == 0, verify.stderr


def worker_processes(server: GatewayProcess) -> list[psutil.Process]:
    """The supervisor's workers (not multiprocessing's resource tracker, also its child)."""
    assert server.process is not None
    workers = []
    for child in psutil.Process(server.process.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                workers.append(child)
        except psutil.Error:
            pass  # gone, or dead and not yet reaped: not serving
    return workers


def _answers(url: str, key: str) -> bool:
    try:
        return httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {key}"}).is_success
    except httpx.TransportError:
        return False


# /metrics ------------------------------------------------------------------------------------


def test_metrics_add_up_every_worker_and_name_the_node(
    tmp_path: Path,
    upstream: FakeOpenAI,
    gateway: Gateway,
    database_url: str,
    running: Callable[..., GatewayProcess],
) -> None:
    config = write_config(tmp_path / "reapi.yaml", upstream)
    key = gateway.key()
    node = unique("node-")
    server = running(GatewayProcess(config, database_url, workers=2, REAPI_NODE_ID=node))
    assert server.process is not None
    workers = {p.pid for p in worker_processes(server)}
    assert len(workers) == 2
    served_by: dict[int, int] = {}
    calls = 0
    # Each call on its own connection, kept open until we know which worker accepted it.
    while len(served_by) < 2 or calls < 20:
        assert calls < 400, f"one worker took every connection: {served_by}"
        with httpx.Client(base_url=server.url, timeout=30) as client:
            body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "Hi"}]}
            answer = client.post(CHAT, headers={"Authorization": f"Bearer {key}"}, json=body)
            assert answer.status_code == 200
            calls += 1
            local_ports = _client_ports(server.port)
            for pid in workers:
                for conn in psutil.Process(pid).net_connections(kind="tcp"):
                    if conn.raddr and conn.raddr.port in local_ports:
                        served_by[pid] = served_by.get(pid, 0) + 1

    # Whichever worker answers the scrape, it reports the whole group.
    for _ in range(4):
        text = httpx.get(server.url + "/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        served = sum(
            s.value
            for s in families["reapi_requests"].samples
            if s.name == "reapi_requests_total" and s.labels["endpoint"] == "chat.completions"
        )
        assert served == calls
        info = families["reapi_node_info"].samples
        assert [(s.labels, s.value) for s in info] == [({"node": node, "workers": "2"}, 1.0)]


def _client_ports(server_port: int) -> set[int]:
    """The local ports of this process's open connections to ``server_port``."""
    return {
        conn.laddr.port
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == server_port
    }
