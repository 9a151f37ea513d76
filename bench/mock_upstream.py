"""The Python mock upstream: a chat completion endpoint with a configurable
time to first token and inter-token delay, for the latency and streaming runs.

It speaks HTTP/1.1 keep-alive directly on asyncio protocols (httptools parser,
uvloop) so that hundreds of paced streams cost it little CPU; anything heavier
would make the rig, not the gateway, the thing being measured. Any POST is a
chat completion; `"stream": true` in the body selects SSE. Throughput runs use
nginx instead (see systems.py), which is faster still.
"""

from __future__ import annotations

import argparse
import asyncio

import httptools
import uvloop
from fixtures import SLOW_MODEL, chat_completion, sse_events


class _Conn(asyncio.Protocol):
    def __init__(self, cfg: argparse.Namespace, json_body: bytes, events: list[bytes]) -> None:
        self.cfg, self.json_body, self.events = cfg, json_body, events
        self.parser = httptools.HttpRequestParser(self)
        self.body = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.body.clear()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        stream = b'"stream": true' in self.body or b'"stream":true' in self.body
        loop = asyncio.get_running_loop()
        if stream:
            head = (
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            self.transport.write(head)  # type: ignore[union-attr]
            self.timer = loop.call_later(self.cfg.ttft, self._send_event, 0)
        else:
            self.timer = loop.call_later(self.cfg.ttft, self._send_json)

    def _send_json(self) -> None:
        if self.transport:
            head = (
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
            )
            self.transport.write(head % len(self.json_body) + self.json_body)

    def _send_event(self, i: int) -> None:
        if not self.transport:
            return
        ev = self.events[i]
        if i + 1 < len(self.events):
            self.transport.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            # finish, usage and [DONE] follow the last token without a pause
            delay = self.cfg.itl if i + 1 < len(self.events) - 3 else 0
            self.timer = asyncio.get_running_loop().call_later(delay, self._send_event, i + 1)
        else:
            self.transport.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(ev), ev))
            self.timer = None


async def serve(cfg: argparse.Namespace) -> None:
    json_body, events = chat_completion(SLOW_MODEL), sse_events(SLOW_MODEL, cfg.chunks)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Conn(cfg, json_body, events), cfg.host, cfg.port, backlog=4096
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18002)
    ap.add_argument("--ttft", type=float, default=0.1, help="seconds before the first byte")
    ap.add_argument("--itl", type=float, default=0.05, help="seconds between content chunks")
    ap.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    uvloop.run(serve(ap.parse_args()))


if __name__ == "__main__":
    main()
