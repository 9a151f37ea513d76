"""How ``reapi serve`` runs uvicorn: one process, or a supervisor and N workers.

What this adds to uvicorn's own process handling:

- **SIGTERM** (and SIGINT) is a normal, graceful stop that exits 0: the listening socket is
  closed first (a new connection is refused, so a load balancer moves on), calls in flight,
  streams included, run on for up to ``Settings.shutdown_timeout`` seconds, then the app's
  lifespan settles what is left and closes the stores. Under a supervisor the supervisor's own
  copy of the socket is closed too: otherwise the kernel keeps queueing connections nobody will
  accept.
- **SIGHUP** under ``--workers N`` reloads the config: the supervisor reads and validates the
  file once, and only if it is good replaces the workers one by one (each new worker serves
  before an old one drains and stops). Every worker started from then on, a replacement for a
  crashed one included, reads that validated copy, never the file as it is now; a bad file is
  refused with a logged error and the running config stays. One process reloads in place
  (``reapi.reload``).
- **Metrics** of N workers meet in a directory the supervisor creates (``metrics/``, given to
  the workers as ``PROMETHEUS_MULTIPROC_DIR``) and removes at exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from socket import socket

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from reapi.config import ConfigError, load_config

log = logging.getLogger("reapi")


def validate_config(path: Path | None, environ: Mapping[str, str]) -> None:
    """Everything ``reapi serve`` checks in a config before serving it; raises ConfigError."""
    from reapi.worker.runtime import load_catalog

    load_catalog(load_config(path, environ))


def run(config: uvicorn.Config, config_path: Path | None, environ: Mapping[str, str]) -> None:
    """Serve until SIGTERM or SIGINT; returns after a graceful stop."""
    if config.workers == 1:
        _run_one(config)
        return
    runtime = Path(tempfile.mkdtemp(prefix="reapi-serve-"))
    try:
        metrics = runtime / "metrics"
        metrics.mkdir()
        # prometheus_client reads this when a worker imports it.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        snapshot = ConfigSnapshot(config_path, runtime, environ)
        snapshot.take()  # serve already validated the file: this cannot refuse it
        sock = config.bind_socket()
        Supervisor(config, [sock], snapshot, metrics).run()
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def _run_one(config: uvicorn.Config) -> None:
    server = uvicorn.Server(config)
    # uvicorn re-raises the stop signal once it has shut down, under the handler found before
    # it started: with the default one, a graceful stop would end as "killed by SIGTERM".
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C's re-raise, after the same shutdown
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class ConfigSnapshot:
    """The validated copy of the operator's config file the workers read (``REAPI_CONFIG``)."""

    def __init__(self, source: Path | None, runtime: Path, environ: Mapping[str, str]) -> None:
        self.source = source
        self._runtime = runtime
        self._environ = environ
        self._taken = 0
        self.current: Path | None = None

    def take(self) -> bool:
        """Copy and validate the file; on success the workers started from now on read the
        copy. On failure log why and keep the previous copy."""
        if self.source is None:
            return True
        self._taken += 1
        copy = self._runtime / f"config-{self._taken}.yaml"
        try:
            copy.write_bytes(self.source.read_bytes())
            validate_config(copy, self._environ)
        except (ConfigError, OSError) as exc:
            copy.unlink(missing_ok=True)
            message = str(exc).replace(str(copy), str(self.source))
            log.error("config %s refused, the running config stays: %s", self.source, message)
            return False
        # Earlier copies stay until the server exits: a worker still starting may not have
        # read its copy yet.
        self.current = copy
        os.environ["REAPI_CONFIG"] = str(copy)
        return True


class Supervisor(Multiprocess):
    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket],
        snapshot: ConfigSnapshot,
        metrics: Path,
    ) -> None:
        super().__init__(config, sockets)
        self._snapshot = snapshot
        self._metrics = metrics

    def keep_subprocess_alive(self) -> None:
        before = {process.pid for process in self.processes}
        super().keep_subprocess_alive()
        from prometheus_client import multiprocess

        for pid in before - {process.pid for process in self.processes}:
            # A worker that died (killed, crashed) could not take its live gauges out of the
            # group's sums itself: its calls in flight are not in flight any more.
            multiprocess.mark_process_dead(pid, str(self._metrics))  # type: ignore[no-untyped-call]

    def handle_hup(self) -> None:
        log.info("SIGHUP: reloading the config from %s", self._snapshot.source or "(no file)")
        if not self._snapshot.take():
            return
        before = list(self.processes)
        super().handle_hup()
        if any(process in before for process in self.processes):
            # A new worker did not start (uvicorn logged why): the others keep the config they
            # have, so the group may serve both until the next SIGHUP succeeds.
            log.error("SIGHUP: not every worker was replaced; send SIGHUP again once fixed")
        else:
            log.info("SIGHUP: every worker serves the new config")

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()

    def _stop_listening(self) -> None:
        # The workers close their copies as they begin to drain.
        for sock in self.sockets:
            sock.close()
