"""The floor: the cheapest honest Python pass-through proxy, kept as the reference
every Python gateway is compared with.

Raw ASGI on uvicorn (uvloop + httptools), one pooled aiohttp client session, no
framework, no auth, no parsing of the body. SSE responses are relayed chunk by
chunk as they arrive; everything else is read whole and forwarded. It must stay
featureless: whatever reapi costs above this line is the price of its features.
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import uvicorn

_FORWARD = {b"authorization", b"content-type", b"accept"}


class FloorProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = bytearray()
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in _FORWARD}
        url = self.upstream + scope["path"]
        assert self.session is not None
        try:
            async with self.session.request(
                scope["method"], url, data=bytes(body), headers=headers
            ) as resp:
                ctype = resp.headers.get("content-type", "application/octet-stream")
                if ctype.startswith("text/event-stream"):
                    await send(_start(resp.status, ctype, None))
                    async for chunk in resp.content.iter_any():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                else:
                    data = await resp.read()
                    await send(_start(resp.status, ctype, len(data)))
                    await send({"type": "http.response.body", "body": data})
        except aiohttp.ClientError as exc:
            msg = f'{{"error": {{"message": "upstream: {type(exc).__name__}"}}}}'.encode()
            await send(_start(502, "application/json", len(msg)))
            await send({"type": "http.response.body", "body": msg})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=300)
                timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
                self.session = aiohttp.ClientSession(
                    connector=connector, timeout=timeout, auto_decompress=False
                )
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                if self.session:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _start(status: int, ctype: str, length: int | None) -> dict[str, Any]:
    headers = [(b"content-type", ctype.encode())]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--upstream", default="http://127.0.0.1:18001")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18010)
    args = ap.parse_args()
    uvicorn.run(
        FloorProxy(args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
