"""Keeps one local llama-server child process serving: start, health, restart with backoff, stop.

The server runs in its own process (``reapi.providers.llamacpp.server``) so that native crashes
stay out of the gateway; this module owns that process and nothing else. It speaks no wire format
beyond ``GET /health``: provider adapters talk OpenAI or Anthropic to ``base_url`` themselves.

Lifecycle contract: ``start()`` returns once the server answers ``/health`` (or raises
``LocalModelUnavailable``); from then on a watchdog task restarts the child whenever it exits,
waiting longer after each quick failure, on the same port so ``base_url`` never changes.
``stop()`` is idempotent, ends the watchdog and the child, and reaps it: no zombie, no stray
server. It is what the gateway's lifespan calls on shutdown. llama.cpp server documentation:
https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
import tempfile
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp

from reapi.providers.llamacpp.chat_template import GEMMA3_CHAT_TEMPLATE
from reapi.providers.llamacpp.errors import LocalModelUnavailable
from reapi.providers.llamacpp.model import require_xllamacpp, resolve_model
from reapi.providers.llamacpp.server import LISTENING_PREFIX

logger = logging.getLogger(__name__)
child_logger = logging.getLogger("reapi.providers.llamacpp.child")

_CHILD_MODULE = "reapi.providers.llamacpp.server"
_STDERR_KEPT_LINES = 50
_STDERR_REPORTED_LINES = 5
_HEALTH_POLL_SECONDS = 0.05
_PUMP_DRAIN_SECONDS = 1.0
# llama.cpp can log whole prompts on one line; asyncio's default 64 KiB line limit is too small.
_STREAM_LINE_LIMIT = 1 << 20


@dataclass(frozen=True, slots=True)
class LlamaServerConfig:
    """How to run the local server. Defaults serve the packaged Gemma 3 270M.

    ``model_path=None`` assembles the packaged model into ``model_cache_dir`` (default: the
    model package's own cache). ``threads=None`` lets llama.cpp pick. ``port=None`` lets the
    kernel pick a free port on first start; restarts reuse it. ``default_max_tokens`` applies
    only to OpenAI-style requests that omit ``max_tokens`` (-1: until the context is full); it
    is no ceiling, and ``/v1/messages`` ignores it, so callers must send ``max_tokens``.
    """

    model_path: Path | None = None
    model_cache_dir: Path | None = None
    threads: int | None = None
    ctx_size: int = 4096
    chat_template: str = GEMMA3_CHAT_TEMPLATE
    host: str = "127.0.0.1"
    port: int | None = None
    model_alias: str = "gemma-3-270m"
    default_max_tokens: int = 1024
    parallel: int = 1
    startup_timeout: float = 60.0
    stop_timeout: float = 5.0
    restart_backoff_initial: float = 0.5
    restart_backoff_max: float = 30.0

    def __post_init__(self) -> None:
        # The server has no API key: reachable from elsewhere, it would be a free, unmetered
        # side door around the gateway's keys and billing.
        if not _is_loopback(self.host):
            raise ValueError(f"llama-server must bind a loopback address, not {self.host!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError("threads must be at least 1")
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if self.ctx_size < 1 or self.parallel < 1:
            raise ValueError("ctx_size and parallel must be positive")


class LlamaServerSupervisor:
    """Runs and watches one llama-server child. Not thread-safe; use from one event loop."""

    def __init__(self, config: LlamaServerConfig | None = None) -> None:
        self._config = config or LlamaServerConfig()
        self._port = self._config.port or 0
        self._model: Path | None = None
        self._template_dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._stderr_tail: deque[str] = deque(maxlen=_STDERR_KEPT_LINES)
        self._base_url: str | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._restarts = 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, stable across restarts. Raises before the first start."""
        if self._base_url is None:
            raise RuntimeError("the local llama-server has not been started")
        return self._base_url

    @property
    def restarts(self) -> int:
        """How many times the watchdog has respawned the child (successfully or not)."""
        return self._restarts

    @property
    def ready(self) -> bool:
        """True while a child that has answered ``/health`` is believed to be running."""
        return self._ready.is_set()

    @property
    def pid(self) -> int | None:
        """The current child's pid, or None when no child is running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def wait_ready(self) -> None:
        """Wait until a child is serving (e.g. after a restart); bound it with asyncio.timeout."""
        await self._ready.wait()

    async def start(self) -> None:
        """Start the server and return once ``/health`` answers. A no-op when already running.

        Raises ``LocalModelUnavailable`` (with the last lines of the server's stderr when it
        got that far); nothing is left running in that case.
        """
        async with self._lock:
            if self._watchdog is not None:
                return
            require_xllamacpp()
            cfg = self._config
            self._model = await asyncio.to_thread(
                resolve_model, cfg.model_path, cfg.model_cache_dir
            )
            self._write_template()
            try:
                await self._spawn()
            except BaseException:
                self._remove_template()
                raise
            self._watchdog = asyncio.create_task(self._watch(), name="llama-server watchdog")

    async def stop(self) -> None:
        """Stop the watchdog and the child, and reap it. Idempotent; safe before ``start``."""
        async with self._lock:
            watchdog, self._watchdog = self._watchdog, None
            if watchdog is not None:
                watchdog.cancel()
                await asyncio.wait({watchdog})
            if self._proc is not None:
                await self._reap(self._proc)
            self._ready.clear()
            self._remove_template()

    async def __aenter__(self) -> LlamaServerSupervisor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _command(self) -> list[str]:
        cfg = self._config
        assert self._model is not None and self._template_dir is not None
        command = [
            sys.executable, "-m", _CHILD_MODULE,
            "--model", str(self._model),
            "--host", cfg.host,
            "--port", str(self._port),
            "--ctx-size", str(cfg.ctx_size),
            "--parallel", str(cfg.parallel),
            "--n-predict", str(cfg.default_max_tokens),
            "--alias", cfg.model_alias,
            "--chat-template-file", str(self._template_path()),
        ]  # fmt: skip
        if cfg.threads is not None:
            command += ["--threads", str(cfg.threads)]
        return command

    async def _spawn(self) -> None:
        """Start one child and return once it is healthy; on any failure, leave no child."""
        self._stderr_tail.clear()
        command = self._command()
        try:
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=_STREAM_LINE_LIMIT,
                # Its own session: a Ctrl-C meant for the gateway must not kill the child behind
                # the watchdog's back during shutdown; the gateway stops it through stop().
                start_new_session=True,
            )
        except OSError as exc:
            raise LocalModelUnavailable(f"cannot run {sys.executable}: {exc}") from exc
        self._proc = proc
        logger.info("started llama-server pid %d: %s", proc.pid, " ".join(command))
        listening: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        assert proc.stdout is not None and proc.stderr is not None
        self._pumps = [
            asyncio.create_task(self._pump_stdout(proc.stdout, listening)),
            asyncio.create_task(self._pump_stderr(proc.stderr)),
        ]
        try:
            async with asyncio.timeout(self._config.startup_timeout):
                address = await listening
                if address is None:
                    await proc.wait()
                    await self._drain_pumps()
                    raise LocalModelUnavailable(
                        f"llama-server exited ({_describe_exit(proc.returncode)}) before it "
                        f"was listening; {self._stderr_summary()}"
                    )
                await self._wait_healthy(proc, address)
        except TimeoutError:
            await self._reap(proc)
            raise LocalModelUnavailable(
                f"llama-server did not become healthy within {self._config.startup_timeout:g}s; "
                f"{self._stderr_summary()}"
            ) from None
        except BaseException:
            await self._reap(proc)
            raise
        self._port = urlsplit(address).port or self._port
        self._base_url = address.rstrip("/")
        self._ready.set()

    async def _wait_healthy(self, proc: asyncio.subprocess.Process, address: str) -> None:
        health = address.rstrip("/") + "/health"
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if proc.returncode is not None:
                    await self._drain_pumps()
                    raise LocalModelUnavailable(
                        f"llama-server exited ({_describe_exit(proc.returncode)}) while "
                        f"starting; {self._stderr_summary()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(health) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(_HEALTH_POLL_SECONDS)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        quick_failures = 0
        while True:
            proc = self._proc
            assert proc is not None
            since = loop.time()
            await proc.wait()
            await self._drain_pumps()
            self._ready.clear()
            # A child that outlived the longest backoff was healthy: start counting afresh, so a
            # crash a day waits the initial delay while a crash loop backs off to the cap.
            if loop.time() - since >= self._config.restart_backoff_max:
                quick_failures = 0
            delay = min(
                self._config.restart_backoff_initial * 2**quick_failures,
                self._config.restart_backoff_max,
            )
            quick_failures += 1
            logger.warning(
                "llama-server pid %d exited (%s); restart #%d in %.2fs; %s",
                proc.pid,
                _describe_exit(proc.returncode),
                self._restarts + 1,
                delay,
                self._stderr_summary(),
            )
            await asyncio.sleep(delay)
            self._restarts += 1
            try:
                await self._spawn()
            except LocalModelUnavailable as exc:
                logger.error("llama-server restart #%d failed: %s", self._restarts, exc)
            except Exception:
                logger.exception("llama-server restart #%d failed", self._restarts)
            else:
                logger.warning(
                    "llama-server restart #%d serving at %s (pid %s)",
                    self._restarts,
                    self._base_url,
                    self.pid,
                )

    async def _reap(self, proc: asyncio.subprocess.Process) -> None:
        """End ``proc`` (SIGTERM, then SIGKILL after ``stop_timeout``) and collect its status."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), self._config.stop_timeout)
            except TimeoutError:
                logger.warning("llama-server pid %d ignored SIGTERM; killing it", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        await self._drain_pumps()

    async def _drain_pumps(self) -> None:
        pumps, self._pumps = self._pumps, []
        if not pumps:
            return
        # The pipes reach EOF when the child exits, unless something it spawned still holds them.
        _, pending = await asyncio.wait(pumps, timeout=_PUMP_DRAIN_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _pump_stdout(
        self, stream: asyncio.StreamReader, listening: asyncio.Future[str | None]
    ) -> None:
        async for line in _lines(stream):
            if line.startswith(LISTENING_PREFIX) and not listening.done():
                listening.set_result(line.removeprefix(LISTENING_PREFIX).strip())
            else:
                child_logger.debug("%s", line)
        if not listening.done():
            listening.set_result(None)

    async def _pump_stderr(self, stream: asyncio.StreamReader) -> None:
        # Always drained, even when nobody reads the log: a full pipe would freeze the server.
        async for line in _lines(stream):
            self._stderr_tail.append(line)
            child_logger.debug("%s", line)

    def _stderr_summary(self) -> str:
        lines = [line.strip() for line in self._stderr_tail if line.strip()]
        if not lines:
            return "its stderr was empty"
        return "last stderr lines: " + " | ".join(lines[-_STDERR_REPORTED_LINES:])

    def _template_path(self) -> Path:
        assert self._template_dir is not None
        return Path(self._template_dir.name) / "chat_template.jinja"

    def _write_template(self) -> None:
        self._template_dir = tempfile.TemporaryDirectory(prefix="reapi-llamacpp-")
        self._template_path().write_text(self._config.chat_template, encoding="utf-8")

    def _remove_template(self) -> None:
        template_dir, self._template_dir = self._template_dir, None
        if template_dir is not None:
            template_dir.cleanup()


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[str]:
    while True:
        try:
            raw = await stream.readline()
        except ValueError:
            continue  # a line past the limit: asyncio has dropped it; keep reading
        if not raw:
            return
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
    return f"status {returncode}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
