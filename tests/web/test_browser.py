"""The public pages in a real browser: Debian's chromium driven by Playwright (no browser
download: the system binary is launched). Checks what a visitor sees, that the example tabs
work, that the Content-Security-Policy lets the page run without a single console error, and
saves a screenshot of each page into the test's output directory (or REAPI_TEST_SCREENSHOTS)
for a reviewer to look at."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Site

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("REAPI_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM}: install it with apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # REAPI_TEST_SCREENSHOTS keeps them somewhere pytest will not clean up.
    chosen = os.environ.get("REAPI_TEST_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots", numbered=False)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the public pages: {folder}")
    return folder


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    yield page
    context.close()


def visit(page: Any, site: Site, path: str, shots: Path, name: str) -> None:
    response = page.goto(site.url + path)
    assert response is not None
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    # A blocked style sheet, script or inline snippet shows up here as a CSP violation.
    assert page.problems == [], page.problems


def test_landing_page(page: Any, site: Site, shots: Path) -> None:
    visit(page, site, "/", shots, "landing")
    assert page.get_by_role("heading", level=1).inner_text().startswith("One key for chat")
    nav = page.locator("header")
    for name in ("Docs", "Pricing", "Log in", "Sign up"):
        assert nav.get_by_role("link", name=name, exact=True).is_visible()
    page.locator("header").get_by_role("link", name="Pricing", exact=True).click()
    page.wait_for_url(site.url + "/pricing")


def test_pricing_page(page: Any, site: Site, shots: Path) -> None:
    visit(page, site, "/pricing", shots, "pricing")
    claude = page.locator('tr[data-model="claude-sonnet-4-6"]')
    assert claude.locator("td.num").all_inner_texts() == ["$3.00", "$15.00", "$0.30", "$3.75"]
    tiny = page.locator('tr[data-model="vendor/tiny-1"]')
    assert tiny.locator("td.num").first.inner_text() == "$0.0375"
    tier = page.locator('tr[data-model="gpt-image-2"][data-tier="2k"]')
    assert tier.locator("td.num").all_inner_texts() == ["35", "$0.035"]
    assert page.locator('tr[data-group="vip"] td.num').first.inner_text() == "\u00d71.5"
    assert claude.is_visible() and tier.is_visible()


def test_docs_overview(page: Any, site: Site, shots: Path) -> None:
    visit(page, site, "/docs", shots, "docs")
    sidebar = page.locator("aside.sidebar")
    assert sidebar.locator("h2").all_inner_texts() == ["IMAGE", "AUDIO", "VIDEO", "CHAT"]
    sidebar.get_by_role("link", name="vendor/tiny-1").click()
    page.wait_for_url(site.url + "/docs/models/vendor/tiny-1")
    assert page.get_by_role("heading", level=1).inner_text() == "vendor/tiny-1"


def test_chat_model_page(page: Any, site: Site, shots: Path) -> None:
    visit(page, site, "/docs/models/claude-sonnet-4-6", shots, "model-chat")
    assert page.get_by_role("heading", level=1).inner_text() == "claude-sonnet-4-6"
    assert page.get_by_test_id("headline-price").inner_text() == "$3.00 / $15.00"
    tabs = page.get_by_role("tab")
    assert tabs.all_inner_texts() == [
        "curl",
        "Python · openai",
        "Python · anthropic",
        "TypeScript",
        "Go",
    ]
    curl = page.locator('code[data-lang="curl"]')
    assert curl.is_visible()
    assert f"{site.url}/v1/chat/completions" in curl.inner_text()
    anthropic = page.locator('code[data-lang="python"][data-sdk="anthropic"]')
    assert not anthropic.is_visible()
    page.get_by_role("tab", name="Python · anthropic").click()
    assert anthropic.is_visible()
    assert not curl.is_visible()
    assert f'base_url="{site.url}"' in anthropic.inner_text()
    page.screenshot(path=str(shots / "model-chat-anthropic-tab.png"))
    limits = page.get_by_test_id("rate-limits")
    assert limits.locator('tr[data-group="default"] td').all_inner_texts() == [
        "600",
        "2,000,000",
        "20",
    ]


def test_task_model_page(page: Any, site: Site, shots: Path) -> None:
    visit(page, site, "/docs/models/gpt-image-2", shots, "model-task")
    assert page.get_by_role("heading", level=1).inner_text() == "gpt-image-2"
    submit = page.locator('code[data-lang="curl"][data-step="submit"]')
    assert submit.is_visible()
    assert f"{site.url}/api/v1/images/generations" in submit.inner_text()
    prices = page.get_by_test_id("model-prices")
    assert prices.locator("tbody tr").nth(1).locator("td").all_inner_texts()[:2] == [
        "35",
        "$0.035",
    ]
    assert page.locator(".field-name", has_text="resolution").is_visible()


def test_unknown_model_page(page: Any, site: Site, shots: Path) -> None:
    response = page.goto(site.url + "/docs/models/no-such-model")
    assert response is not None and response.status == 404
    page.screenshot(path=str(shots / "not-found.png"), full_page=True)
    assert page.get_by_role("heading", level=1).inner_text() == "Page not found"
    assert page.locator("aside.sidebar").is_visible()
    # The one failed load is the page itself; its style sheet, script and icon all loaded.
    assert len(page.problems) == 1 and "404" in page.problems[0], page.problems
