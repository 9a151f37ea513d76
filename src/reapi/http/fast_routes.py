"""A front door for the chat endpoints, in front of Starlette's middleware stack.

Every chat call would otherwise cross Starlette's error middleware, exception middleware and
router before reaching its handler: layers the chat handlers do not need, since they already
turn every exception into an answer in the client's own envelope. This ASGI wrapper sends
``POST`` to those paths straight to their handlers and everything else (other routes, lifespan)
through the full Starlette app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

Endpoint = Callable[[Request], Awaitable[Any]]


class FastRoutes:
    def __init__(
        self,
        app: Starlette,
        routes: dict[str, Endpoint],
        refuse_websocket: Callable[[], Response] | None = None,
    ) -> None:
        self.app = app
        self._routes = routes
        self._refuse_websocket = refuse_websocket

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._routes.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self.app
                response = await endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
        elif scope["type"] == "websocket" and self._refuse_websocket is not None:
            # No route takes a WebSocket. Without this the server would answer the handshake
            # with a bare 403, which clients (Codex) retry; a 426 in the OpenAI envelope makes
            # them use HTTP. The denial response needs the server's ASGI extension for it.
            if "websocket.http.response" in scope.get("extensions", {}):
                await WebSocket(scope, receive, send).send_denial_response(self._refuse_websocket())
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)
