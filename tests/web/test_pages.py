"""The public pages over HTTP on a real gateway: statuses, security headers, the 404 page,
``HEAD /``, exact prices and escaping of operator input."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from typing import Any

import httpx
import pytest

from reapi.config import build_config
from reapi.services.tasks.catalog import load_task_models
from reapi.web.data import build_site
from reapi.web.pages import Pages
from tests.web.conftest import Site

PAGES = [
    "/",
    "/pricing",
    "/docs",
    "/docs/models/claude-sonnet-4-6",
    "/docs/models/vendor/tiny-1",
    "/docs/models/gpt-image-2",
    "/docs/models/audio-stem-separator",
]


def assert_secure(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_html_with_security_headers(site: Site, path: str) -> None:
    response = httpx.get(site.url + path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert_secure(response)
    html = response.text
    # The policy forbids inline code, so the pages must not need any.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    for link in ("/docs", "/pricing", "/login", "/signup"):
        assert f'href="{link}"' in html


def test_head_slash_answers_at_once_with_no_body(site: Site) -> None:
    response = httpx.head(site.url + "/")
    assert response.status_code == 200
    assert response.content == b""


def test_the_landing_page_links_docs_pricing_log_in_and_sign_up(site: Site) -> None:
    html = httpx.get(site.url + "/").text
    for text, href in (
        ("Read the docs", "/docs"),
        ("Log in", "/login"),
        ("Sign up", "/signup"),
        ("See pricing", "/pricing"),
    ):
        assert re.search(rf'href="{href}"[^>]*>{text}', html), text


def test_pricing_shows_the_configured_rates_exactly(site: Site) -> None:
    html = httpx.get(site.url + "/pricing").text
    row = _row(html, 'data-model="vendor/tiny-1"')
    assert re.findall(r'class="num">([^<]+)<', row) == ["$0.0375", "$0.15", "$0.0375", "$0.0375"]
    claude = _row(html, 'data-model="claude-sonnet-4-6"')
    assert re.findall(r'class="num">([^<]+)<', claude) == ["$3.00", "$15.00", "$0.30", "$3.75"]
    tier = _row(html, 'data-model="gpt-image-2" data-tier="2k"')
    assert re.findall(r'class="num">([^<]+)<', tier) == ["35", "$0.035"]
    slow = _row(html, 'data-model="slow-video"')
    assert re.findall(r'class="num">([^<]+)<', slow) == ["7.5", "$0.0075"]
    vip = _row(html, 'data-group="vip"')
    ratio = "\u00d71.5"  # the multiplication sign
    assert re.findall(r'class="num">([^<]+)<', vip) == [ratio, "6,000", "no limit", "no limit"]
    # Models no channel serves are not for sale here.
    assert "gpt-5.4" not in html
    assert "audio-multistem-splitter" not in html


def _row(html: str, marker: str) -> str:
    start = html.index(marker)
    return html[start : html.index("</tr>", start)]


def test_a_model_page_shows_limits_groups_and_examples(site: Site) -> None:
    html = httpx.get(site.url + "/docs/models/claude-sonnet-4-6").text
    assert "1,000,000 tokens" in html
    assert "128,000 tokens" in html
    limits = html[html.index('data-testid="rate-limits"') :]
    assert re.findall(r'class="num">([^<]+)<', _row(limits, 'data-group="default"')) == [
        "600",
        "2,000,000",
        "20",
    ]
    blocks = re.findall(r'<pre><code data-lang="(\w+)"(?: data-sdk="(\w+)")?', html)
    assert blocks == [
        ("curl", ""),
        ("python", "openai"),
        ("python", "anthropic"),
        ("typescript", "openai"),
        ("go", ""),
    ]
    assert f"{site.url}/v1" in html
    assert "YOUR_API_KEY" in html


def test_a_task_model_page_shows_its_schema_and_billing(site: Site) -> None:
    html = httpx.get(site.url + "/docs/models/gpt-image-2").text
    assert "per generation" in html
    assert "$0.035" in html
    assert "image_urls" in html
    assert "/api/v1/images/generations" in html
    steps = re.findall(r'data-lang="curl" data-step="(\w+)"', html)
    assert steps == ["submit", "poll"]


@pytest.mark.parametrize(
    "path",
    ["/docs/models/no-such-model", "/docs/models/vendor/nope", "/docs/guides/x"],
)
def test_unknown_docs_pages_are_a_404_page_in_the_site_layout(site: Site, path: str) -> None:
    response = httpx.get(site.url + path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert_secure(response)
    assert "Page not found" in response.text
    assert 'class="sidebar"' in response.text
    assert "Traceback" not in response.text


def test_the_docs_index_answers_with_a_trailing_slash_too(site: Site) -> None:
    response = httpx.get(site.url + "/docs/")
    assert response.status_code == 200
    assert "<h1>Welcome</h1>" in response.text


def test_a_hostile_path_is_escaped_on_the_404_page(site: Site) -> None:
    response = httpx.get(site.url + "/docs/models/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert response.status_code == 404
    assert "<script>alert" not in response.text
    assert "&lt;script&gt;alert(1)" in response.text


def test_api_paths_keep_their_json_errors(site: Site) -> None:
    response = httpx.get(site.url + "/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


def test_the_style_sheet_and_script_are_served(site: Site) -> None:
    css = httpx.get(site.url + "/static/site.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    js = httpx.get(site.url + "/static/site.js")
    assert js.headers["content-type"].startswith("text/javascript")
    # Only the site's own style sheets and scripts are served, nothing else of the package.
    assert httpx.get(site.url + "/static/__init__.py").status_code == 404
    assert httpx.get(site.url + "/static/%2e%2e%2fpages.py").status_code == 404


def test_operator_input_is_escaped_everywhere() -> None:
    evil = "<img src=x onerror=alert(1)>"
    config = build_config(
        {
            "channels": [
                {
                    "name": "c",
                    "type": "openai",
                    "base_url": "http://127.0.0.1:9/v1",
                    "models": ["m<b>1</b>"],
                    "groups": ["g<i>"],
                }
            ],
            "models": {"m<b>1</b>": {"owned_by": evil, "free": True}},
            "groups": {"g<i>": {"description": evil}},
        }
    )
    pages = Pages(build_site(config, load_task_models({})))
    for key, template, extra in (
        ("/", "home.html", {}),
        ("/pricing", "pricing.html", {}),
        ("/docs", "docs_index.html", {"current": ""}),
        (
            "/docs/models/m",
            "model_chat.html",
            {"current": "m<b>1</b>", "doc": pages.site.models["m<b>1</b>"]},
        ),
    ):
        context: dict[str, Any] = {"page": "docs", **extra}
        html = pages.render(key, template, **context).decode()
        assert "<img" not in html, key
        assert "<b>1</b>" not in html, key
        assert "m&lt;b&gt;1&lt;/b&gt;" in html, key


def test_the_template_engine_loads_only_when_a_page_is_viewed(database_url: str) -> None:
    """The chat path and HEAD / never import Jinja2; the first page view does."""
    script = textwrap.dedent(
        f"""
        import sys
        from starlette.testclient import TestClient
        from reapi.app import create_app
        from reapi.config import build_config
        from reapi.settings import Settings

        app = create_app(Settings(database_url={database_url!r}), build_config({{}}))
        with TestClient(app) as client:
            assert client.head("/").status_code == 200
            assert client.post("/v1/chat/completions", json={{}}).status_code == 401
            assert "jinja2" not in sys.modules, "loaded before any page"
            assert client.get("/").status_code == 200
            assert "jinja2" in sys.modules
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


def _render_all(config_raw: dict[str, Any]) -> dict[str, str]:
    config = build_config(config_raw)
    pages = Pages(build_site(config, load_task_models(config.task_models)))
    out = {
        "/pricing": pages.render("/pricing", "pricing.html", page="pricing").decode(),
        "/docs": pages.render("/docs", "docs_index.html", page="docs", current="").decode(),
    }
    for name, doc in pages.site.models.items():
        template = "model_chat.html" if doc.task_price is None else "model_task.html"
        key = f"/docs/models/{name}"
        out[key] = pages.render(key, template, page="docs", current=name, doc=doc).decode()
    return out


def test_every_builtin_catalog_entry_renders_a_page() -> None:
    """A channel that may carry any task model lists the whole catalog: every entry, priced
    or not, gets a page with its parameters and examples, and a pricing row."""
    names = sorted(load_task_models({}))
    rendered = _render_all(
        {
            "channels": [
                {"name": "all", "type": "reapi", "base_url": "http://127.0.0.1:9", "models": names}
            ]
        }
    )
    for name in names:
        html = rendered[f"/docs/models/{name}"]
        assert f"<h1>{name}</h1>" in html
        assert html.count('<pre><code data-lang="') == 5
        assert f'data-model="{name}"' in rendered["/pricing"]


def test_an_embedding_model_page_says_it_cannot_be_called_here() -> None:
    rendered = _render_all(
        {
            "channels": [
                {
                    "name": "c",
                    "type": "openai",
                    "base_url": "http://127.0.0.1:9/v1",
                    "models": ["vendor/embed-1"],
                }
            ],
            "models": {"vendor/embed-1": {"kind": "embedding", "free": True}},
        }
    )
    html = rendered["/docs/models/vendor/embed-1"]
    assert 'data-testid="no-endpoint"' in html
    assert "data-lang=" not in html
    assert "<h2>Embedding</h2>" in rendered["/docs/models/vendor/embed-1"]
