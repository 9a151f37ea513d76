"""Renders the public pages with Jinja2 (autoescaped) from the data in ``reapi.web.data``.

The configuration does not change while a process runs, so each page is rendered once, on
its first view, and then served from memory. Every answer carries the same security headers:
a Content-Security-Policy that allows only this origin's own style sheet and script (the
templates hold no inline script or style), no framing, no MIME sniffing.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response

from reapi.http.state import state_of
from reapi.web.data import Site, build_site

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
_HTML = "text/html; charset=utf-8"
_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


class Pages:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("reapi.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._rendered: dict[str, bytes] = {}
        folder = files("reapi.web").joinpath("static")
        self.static = {
            entry.name: entry.read_bytes()
            for entry in folder.iterdir()
            if entry.name.endswith(tuple(_STATIC_TYPES))
        }

    def render(self, key: str, template: str, **context: Any) -> bytes:
        page = self._rendered.get(key)
        if page is None:
            page = self.env.get_template(template).render(site=self.site, **context).encode()
            self._rendered[key] = page
        return page


def _pages(request: Request) -> Pages:
    state = request.app.state
    pages: Pages | None = getattr(state, "web_pages", None)
    if pages is None:
        gateway = state_of(request)
        site = build_site(gateway.config, state.tasks.service.catalog, gateway.settings.listen_url)
        pages = Pages(site)
        state.web_pages = pages
    return pages


def _html(body: bytes, status: int = 200) -> Response:
    return Response(body, status, headers=SECURITY_HEADERS, media_type=_HTML)


def home(request: Request) -> Response:
    return _html(_pages(request).render("/", "home.html", page="home"))


def pricing(request: Request) -> Response:
    return _html(_pages(request).render("/pricing", "pricing.html", page="pricing"))


def docs_index(request: Request) -> Response:
    return _html(_pages(request).render("/docs", "docs_index.html", page="docs", current=""))


def model_page(request: Request) -> Response:
    pages = _pages(request)
    name = request.path_params["model"]
    doc = pages.site.models.get(name)
    if doc is None:
        return not_found(request, f"No model named {name!r} is served here.")
    template = "model_chat.html" if doc.task_price is None else "model_task.html"
    return _html(pages.render(f"/docs/models/{name}", template, page="docs", current=name, doc=doc))


def not_found(request: Request, message: str = "") -> Response:
    """A 404 in the site's own layout (never cached: the message names the path asked)."""
    pages = _pages(request)
    body = pages.env.get_template("404.html").render(
        site=pages.site, page="", current="", message=message, path=request.url.path
    )
    return _html(body.encode(), 404)


def static(request: Request) -> Response:
    name = request.path_params["name"]
    body = _pages(request).static.get(name)
    if body is None:
        return not_found(request)
    suffix = name[name.rfind(".") :]
    headers = {**SECURITY_HEADERS, "cache-control": "public, max-age=3600"}
    return Response(body, headers=headers, media_type=_STATIC_TYPES[suffix])
