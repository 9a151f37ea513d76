"""CPU cost of the HTTP/1.1 protocol layer alone: uvicorn's HttpToolsProtocol against reapi's
EdgeProtocol (src/reapi/http/edge.py), on one keep-alive connection, each request arriving in
one read and answered by a trivial ASGI app. No sockets, so other tenants of the machine barely
move it: it isolates what the edge's limits cost per request.

    .venv/bin/python bench/protocol_micro.py       # from the checkout's own venv
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import uvloop
from fixtures import request_body
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from reapi.http.edge import protocol_for
from reapi.settings import Settings

BODY = request_body()
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:18013\r\n"
    b"Content-Type: application/json\r\n"
    b"Authorization: Bearer sk-reapi-0123456789abcdef0123456789abcdef\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
) + BODY


async def app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


class Transport:
    """Just enough of a transport for the protocol: counts writes, never blocks."""

    def __init__(self) -> None:
        self.writes = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes += 1

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 1), "peername": ("127.0.0.1", 2)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def cpu_per_request(factory: Callable[..., Any], requests: int) -> float:
    config = Config(app, lifespan="off", log_level="warning", access_log=False, proxy_headers=False)
    config.load()
    protocol = factory(
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )
    transport = Transport()
    protocol.connection_made(transport)
    start = time.process_time_ns()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # the app's task reads the body
        await asyncio.sleep(0)  # and answers
    spent = time.process_time_ns() - start
    assert transport.writes >= requests
    protocol.connection_lost(None)
    return spent / requests / 1000


async def main() -> None:
    variants = {"httptools": HttpToolsProtocol, "edge": protocol_for(Settings())}
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(15):
        for name, factory in variants.items():
            results[name].append(await cpu_per_request(factory, 20_000))
    for name, runs in results.items():
        print(f"{name}: {statistics.median(runs):.2f} us CPU per request (min {min(runs):.2f})")


if __name__ == "__main__":
    uvloop.run(main())
