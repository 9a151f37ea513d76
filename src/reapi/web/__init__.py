"""The public web pages: landing, pricing and the model docs, served by the gateway itself.

This module stays free of Jinja2 and of the page code: the routes here import
``reapi.web.pages`` on the first page view, so a gateway that only relays API calls never loads
the template engine. ``HEAD /`` (a connection warm-up some clients send before every session)
is answered here without rendering anything.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def home(request: Request) -> Response:
    if request.method == "HEAD":
        return Response(b"", 200)
    from reapi.web import pages

    return pages.home(request)


async def pricing(request: Request) -> Response:
    from reapi.web import pages

    return pages.pricing(request)


async def docs_index(request: Request) -> Response:
    from reapi.web import pages

    return pages.docs_index(request)


async def model_page(request: Request) -> Response:
    from reapi.web import pages

    return pages.model_page(request)


async def docs_other(request: Request) -> Response:
    from reapi.web import pages

    if not request.path_params["page"]:  # /docs/
        return pages.docs_index(request)
    return pages.not_found(request, "There is no docs page at this address.")


async def static(request: Request) -> Response:
    from reapi.web import pages

    return pages.static(request)


def routes() -> list[Route]:
    return [
        Route("/", home, methods=["GET", "HEAD"]),
        Route("/pricing", pricing, methods=["GET", "HEAD"]),
        Route("/docs", docs_index, methods=["GET", "HEAD"]),
        Route("/docs/models/{model:path}", model_page, methods=["GET", "HEAD"]),
        Route("/docs/{page:path}", docs_other, methods=["GET", "HEAD"]),
        Route("/static/{name}", static, methods=["GET", "HEAD"]),
    ]
