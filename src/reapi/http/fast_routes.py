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
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Any]]


class FastRoutes:
    def __init__(self, app: Starlette, routes: dict[str, Endpoint]) -> None:
        self.app = app
        self._routes = routes

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
        await self.app(scope, receive, send)
