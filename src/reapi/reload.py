"""SIGHUP in a one-process server: reload the config in place.

(Under ``--workers N`` the supervisor replaces the workers instead: ``reapi.supervisor``.)

``Reloadable`` is the ASGI app uvicorn runs. It holds one generation of ``create_app`` at a time;
on SIGHUP it reads and validates the config, builds and starts a whole new generation (its own
stores, pools and services, exactly as at startup), and only then sends new calls to it. The old
generation finishes the calls it has, streams included, and is then shut down as at exit, its
settlements drained. A config that does not validate, or a generation that does not start, is
refused with a logged error and the running one stays: a call sees one config or the other,
never a mixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from starlette.types import Receive, Scope, Send

from reapi.config import Config, ConfigError, load_config
from reapi.http.fast_routes import FastRoutes
from reapi.settings import Settings

log = logging.getLogger("reapi")


class _Generation:
    def __init__(self, app: FastRoutes) -> None:
        self.app = app
        self.stack = contextlib.AsyncExitStack()
        self._calls = 0
        # Set once this generation is retired and its last call has ended; untouched (no cost
        # per call) while it serves.
        self._drained: asyncio.Event | None = None

    async def start(self) -> None:
        starlette = self.app.app
        await self.stack.enter_async_context(starlette.router.lifespan_context(starlette))

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._calls += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._calls -= 1
            if not self._calls and self._drained is not None:
                self._drained.set()

    async def retire(self) -> None:
        """Wait for the calls this generation has, then shut it down as at exit."""
        self._drained = asyncio.Event()
        if self._calls:
            await self._drained.wait()
        try:
            await self.stack.aclose()
        except Exception:
            log.exception("the replaced config's gateway failed to shut down cleanly")


class Reloadable:
    def __init__(self, settings: Settings, build: Callable[[Settings, Config | None], FastRoutes]):
        self._settings = settings
        self._build = build
        self._current = _Generation(build(settings, None))
        self._reloads: set[asyncio.Task[bool]] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._reloading = asyncio.Lock()

    @property
    def state(self) -> object:
        return self._current.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._current.serve(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            await self._current.start()
        except BaseException:
            log.exception("the gateway failed to start")
            await send({"type": "lifespan.startup.failed", "message": "see the log"})
            return
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        loop.remove_signal_handler(signal.SIGHUP)
        try:
            await asyncio.gather(*self._reloads, return_exceptions=True)
            async with self._reloading:
                await asyncio.gather(*self._retiring, return_exceptions=True)
                await self._current.stack.aclose()
        except BaseException:
            log.exception("the gateway failed to shut down cleanly")
            await send({"type": "lifespan.shutdown.failed", "message": "see the log"})
            return
        await send({"type": "lifespan.shutdown.complete"})

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._reloads.add(task)  # kept referenced until done; shutdown waits for it too
        task.add_done_callback(self._reloads.discard)

    async def reload(self) -> bool:
        """Serve the config file as it is now, if it is good; True when it is served."""
        from reapi.worker.runtime import load_catalog

        async with self._reloading:
            source = self._settings.config_path
            log.info("SIGHUP: reloading the config from %s", source or "(no file)")
            try:
                config = load_config(source, self._settings.environ)
                load_catalog(config)
                fresh = _Generation(self._build(self._settings, config))
                await fresh.start()
            except ConfigError as exc:
                log.error("config %s refused, the running config stays: %s", source, exc)
                return False
            except Exception:
                log.exception("config %s could not be started, the running config stays", source)
                return False
            old, self._current = self._current, fresh
            retire = asyncio.create_task(old.retire())
            self._retiring.add(retire)
            retire.add_done_callback(self._retiring.discard)
            log.info("SIGHUP: new calls are served with the new config")
            return True
