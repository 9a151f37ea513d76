"""``reapi worker`` processes killed with SIGKILL mid-task: another worker takes the task over
once the lease runs out, and the task completes, or fails and is refunded, exactly once. The
upstream never sees a second create call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from reapi.config import build_config
from reapi.money import UNITS_PER_CREDIT
from reapi.settings import Settings
from tests.fakes.task_upstreams import MP4_BYTES
from tests.task_gateway import TaskFakes, TaskGateway, creates, task_config_raw

C = UNITS_PER_CREDIT
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fakes() -> Iterator[TaskFakes]:
    fakes = TaskFakes()
    yield fakes
    fakes.stop()


@pytest.fixture(scope="module")
def setup(
    fakes: TaskFakes, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TaskGateway, Path]]:
    root = tmp_path_factory.mktemp("crash")
    # The server runs no workers: every step happens in the worker processes.
    raw = task_config_raw(
        fakes, root / "media", workers=0, poll_max_interval=0.1, lease_seconds=1.0
    )
    config_path = root / "reapi.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    settings = Settings(database_url=database_url, key_cache_seconds=0.2)
    gateway = TaskGateway(settings, build_config(raw))
    yield gateway, config_path
    gateway.stop()


class Workers:
    def __init__(self, database_url: str, config_path: Path) -> None:
        self.env = {**os.environ, "REAPI_DATABASE_URL": database_url, "REAPI_LOG_LEVEL": "WARNING"}
        self.config_path = config_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reapi.cli", "worker", "--config", str(self.config_path),
             "--concurrency", "2"],
            env=self.env,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def workers(database_url: str, setup: tuple[TaskGateway, Path]) -> Iterator[Workers]:
    pool = Workers(database_url, setup[1])
    yield pool
    pool.stop_all()


# What each wait covers includes starting a worker process: seconds, but tens of them on a busy
# machine. The bound only ends a test that would otherwise hang.
PROCESS_WAIT = 90.0


def wait_for(condition: object, timeout: float = PROCESS_WAIT) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def status_polls(fakes: TaskFakes) -> int:
    return sum(1 for r in fakes.fal.requests if r.method == "GET" and r.path.endswith("/status"))


def test_killed_while_polling_the_job_completes_once(
    setup: tuple[TaskGateway, Path], fakes: TaskFakes, workers: Workers
) -> None:
    gw, _ = setup
    fakes.reset()
    fakes.fal.behaviour.polls_before_done = 10**9  # still running, for as long as it takes
    name, key = gw.user("1000")
    first = workers.start()
    task_id = gw.submit(key, "videos", {"model": "veo3.1-fast", "prompt": "x"}).json()["id"]
    wait_for(lambda: status_polls(fakes) >= 3)
    first.kill()  # SIGKILL: no cleanup, the lease is simply left to expire
    first.wait()
    assert gw.get(key, task_id).json()["status"] == "processing"
    fakes.fal.behaviour.polls_before_done = 0  # done at the next poll
    workers.start()
    task = gw.wait(key, task_id, timeout=PROCESS_WAIT)
    assert task["status"] == "completed", task
    assert httpx.get(task["output"]["video_urls"][0]).content == MP4_BYTES
    assert creates(fakes.fal) == 1
    assert gw.ledger(task_id) == [("charge", -400 * C)]
    assert gw.balance(name) == 600 * C
    assert gw.verify() == []


def test_killed_during_the_create_call_fails_and_refunds_once(
    setup: tuple[TaskGateway, Path], fakes: TaskFakes, workers: Workers
) -> None:
    gw, _ = setup
    fakes.reset()
    release = threading.Event()
    fakes.openai.behaviour.create_release = release  # a synchronous generation, still running
    name, key = gw.user("100")
    first = workers.start()
    try:
        task_id = gw.submit(key, "images", {"model": "gpt-image-2", "prompt": "x"}).json()["id"]
        wait_for(lambda: creates(fakes.openai) == 1)
        first.kill()
        first.wait()
    finally:
        release.set()  # its answer goes to a closed connection
    workers.start()
    task = gw.wait(key, task_id, timeout=PROCESS_WAIT)
    # The upstream may have made (and billed) the image: submitting again could make two.
    assert task["status"] == "failed", task
    assert task["error"]["code"] == 50002
    assert "not submitted twice" in task["error"]["message"]
    time.sleep(1.0)
    assert creates(fakes.openai) == 1
    assert gw.ledger(task_id) == [("charge", -20 * C), ("refund", 20 * C)]
    assert gw.balance(name) == 100 * C
    assert gw.verify() == []


def test_sigterm_stops_a_worker_cleanly_and_the_books_balance(
    setup: tuple[TaskGateway, Path], fakes: TaskFakes, workers: Workers
) -> None:
    gw, _ = setup
    fakes.reset()
    _, key = gw.user("100")
    proc = workers.start()
    task_id = gw.submit(key, "images", {"model": "gpt-image-2", "prompt": "x"}).json()["id"]
    assert gw.wait(key, task_id)["status"] == "completed"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    verify = subprocess.run(
        [sys.executable, "-m", "reapi.cli", "ledger", "verify"],
        env=workers.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    assert "ledger ok" in verify.stdout
