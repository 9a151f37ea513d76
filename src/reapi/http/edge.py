"""The HTTP/1.1 connection in front of the app: uvicorn's httptools protocol, with the limits it
lacks.

uvicorn's httptools protocol is the fastest server layer measured for this gateway (see
docs/architecture.md), but it reads a request head of any size and waits forever for a head or
a body that never completes: a few unauthenticated connections sending endless headers hold
hundreds of MB, and one that stops mid-request keeps its connection for good. This subclass
bounds, per connection:

- the size of a request head (request line and headers): ``max_header_bytes``, else 431;
- the time from a head's first byte (or from the connection's opening) to its end:
  ``header_timeout``, else 408;
- the time from the end of the head to the end of the body: ``body_timeout``, else 408 (or
  just the close, when the answer already started).

Each refusal closes the connection. The size of a body is the app's business: it answers 413
in the route's own envelope, before reading a body whose Content-Length is too large.

Nothing here costs the common path a timer: one is armed only when a read leaves a head or a
body unfinished, and a request that arrives in one read (nearly all of them, on a connection
already open) arms none.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any, cast

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from reapi.services.calls import new_request_id
from reapi.settings import Settings


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    max_header_bytes: int
    header_timeout: float
    body_timeout: float


def protocol_for(settings: Settings) -> type[asyncio.Protocol]:
    """The ``http`` protocol to give uvicorn for these settings (picklable, for workers).

    Run it with ``ws="none"``: the gateway serves no WebSocket, and a connection handed to a
    WebSocket protocol would leave this one's timer behind."""
    limits = EdgeLimits(settings.max_header_bytes, settings.header_timeout, settings.body_timeout)
    # uvicorn only ever calls the class with keyword arguments, so a partial stands in for it.
    return cast("type[asyncio.Protocol]", functools.partial(EdgeProtocol, limits=limits))


class EdgeProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: EdgeLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = limits
        self._max_head = limits.max_header_bytes
        self._in_head = True  # the next bytes belong to a request head
        self._in_body = False  # the head is in, the body is not
        self._head_bytes = 0  # read since the current head began (a bound, not exact)
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a whole request is held to the head's time limit too.
        self._timer = self.loop.call_later(self._limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    # Called as plain functions, not through super(): these run on every request.
    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        _feed(self, data)
        # A request that arrived whole leaves neither set: nothing more to do.
        if self._head_bytes or self._in_body:
            self._unfinished()

    def _unfinished(self) -> None:
        """After a read that left a head or a body unfinished."""
        if self.transport.is_closing():
            return
        if self._in_head:
            if self._head_bytes > self._max_head:
                # Still no end of head: whatever the parser holds is over the limit.
                self._refuse(431, "request_header_too_large", self._too_large_message())
            elif self._timer is None:
                self._timer = self.loop.call_later(
                    self._limits.header_timeout, self._head_timed_out
                )
        elif self._timer is None:
            self._timer = self.loop.call_later(self._limits.body_timeout, self._body_timed_out)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._in_body = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # The read that ended the head may also have carried body bytes: count exactly, but
        # only when the rough count says the head might be over.
        if self._head_bytes > self._max_head and self._head_size() > self._max_head:
            app, self.app = self.app, _head_too_large(self._too_large_message())
            try:
                _headers_complete(self)
            finally:
                self.app = app
        else:
            _headers_complete(self)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._in_body = False
        self._head_bytes = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        _message_complete(self)

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _too_large_message(self) -> str:
        return (
            f"The request's headers are larger than {self._limits.max_header_bytes} bytes "
            "(REAPI_MAX_HEADER_BYTES)."
        )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined head waits behind an answer still being written: not the client's
            # delay. Look again later.
            self._timer = self.loop.call_later(self._limits.header_timeout, self._head_timed_out)
            return
        if self._head_bytes == 0:
            self.transport.close()  # an idle connection: nothing to answer
            return
        self._refuse(
            408,
            "request_timeout",
            f"The request's headers did not arrive within {self._limits.header_timeout:g} s.",
        )

    def _body_timed_out(self) -> None:
        self._timer = None
        if self.flow.read_paused:
            # The app has not taken what was read yet; the client is not the one waiting.
            self._timer = self.loop.call_later(self._limits.body_timeout, self._body_timed_out)
            return
        self._refuse(
            408,
            "request_timeout",
            f"The request's body did not arrive within {self._limits.body_timeout:g} s.",
        )

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` when nothing else is being answered, and close the connection."""
        cycle: RequestResponseCycle | None = self.cycle
        if self._in_body and cycle is not None and not cycle.response_started:
            # The app is waiting for the rest of the body: it sees the client leave, and what
            # it sends from now on is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
            answer = True
        else:
            # Mid-body with an answer started (or sent, before the body was read): closing is
            # the only signal left. Mid-head: answer unless an earlier answer is under way.
            answer = self._in_head and (cycle is None or cycle.response_complete)
        if answer:
            headers = b"".join(
                name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
            )
            self.transport.write(_raw_response(status, headers, code, message))
        self.transport.close()


_feed = HttpToolsProtocol.data_received
_headers_complete = HttpToolsProtocol.on_headers_complete
_message_complete = HttpToolsProtocol.on_message_complete


def _error_body(code: str, message: str) -> bytes:
    # No route has been chosen yet: error.message is where every SDK looks for the reason.
    return orjson.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    )


def _raw_response(status: int, headers: bytes, code: str, message: str) -> bytes:
    body = _error_body(code, message)
    return b"".join(
        (
            STATUS_LINE[status],
            headers,
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-request-id: " + new_request_id().encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        )
    )


def _head_too_large(message: str) -> Any:
    body = _error_body("request_header_too_large", message)

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 431,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                    (b"x-request-id", new_request_id().encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return answer
