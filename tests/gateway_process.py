"""Run ``reapi serve`` as a real child process, as operators do, for crash and multi-node tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes.server import free_port

REAPI = str(Path(sys.executable).with_name("reapi"))


class GatewayProcess:
    def __init__(self, config: Path, database_url: str, *, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self._config = config
        self._env = {
            **os.environ,
            "REAPI_DATABASE_URL": database_url,
            "REAPI_LOG_LEVEL": "WARNING",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = config.with_name(f"gateway-{self.port}.log")

    def start(self) -> GatewayProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(REAPI, "serve", "--config", str(self._config), "--port", str(self.port)),
                    *("--workers", str(self.workers)),
                ],
                env=self._env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        # Seconds normally; tens of them on a busy machine. The bound only ends a hung start.
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(self.log.read_text())
            if time.monotonic() > deadline:
                raise RuntimeError("reapi serve did not become healthy")
            time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
