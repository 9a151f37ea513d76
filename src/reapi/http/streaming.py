"""An event-stream response that notices a client leaving even while the upstream is silent.

Starlette's StreamingResponse (ASGI 2.4 servers) only learns of a disconnect on its next write,
so a stream whose upstream is thinking would keep the upstream busy, and billing, for nothing.
Here a watcher waits for ``http.disconnect`` and cancels the relay at once; the relay's own
cleanup closes the upstream connection, which is what makes the upstream stop generating.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.types import Receive, Scope, Send


class EventStreamResponse:
    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        headers: dict[str, str],
        on_close: Callable[[], Awaitable[None]],
    ) -> None:
        self._chunks = chunks
        self._headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        self._headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        self._headers += [(k.encode(), v.encode()) for k, v in headers.items()]
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = asyncio.current_task()
        assert relay is not None
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            relay.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            async for chunk in self._chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone:
                raise
            relay.uncancel()
        except OSError:
            # The server reports a write to a closed connection this way (ASGI 2.4).
            pass
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self._chunks.aclose()  # type: ignore[attr-defined]
            await self._on_close()
