"""Run an ASGI app or an aiohttp app on 127.0.0.1 in a background thread, for tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from reapi.http.edge import protocol_for
from reapi.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopThread:
    """An event loop in a daemon thread; ``call`` runs a coroutine on it and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


class UvicornThread:
    """A real gateway server in a thread: uvicorn with uvloop and reapi's own HTTP protocol (the
    limits of ``settings``), as ``reapi serve`` runs it."""

    def __init__(
        self,
        app_factory: Callable[[], Any],
        port: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        import uvicorn

        self.port = port or free_port()
        config = uvicorn.Config(
            app_factory,
            factory=True,
            host="127.0.0.1",
            port=self.port,
            loop="uvloop",
            http=protocol_for(settings or Settings()),
            ws="none",
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> UvicornThread:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)
