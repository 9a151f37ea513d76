"""The examples on the model pages run as printed once ``YOUR_API_KEY`` is replaced by a real
key, against a real gateway and the fake upstreams: curl through a shell, the Python ones with
this interpreter (the ``openai``, ``anthropic`` and ``requests`` packages are dev
dependencies), the TypeScript ones with ``tsx`` from npm (installed into a cache outside the
repository on first use) and the Go ones with ``go run`` where Go is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from reapi.web.examples import API_KEY, SAMPLE_MEDIA, TASK_ID
from tests.e2e.conftest import CACHE
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.web.conftest import Site

pytestmark = pytest.mark.slow

ANSWER = "Examples run verbatim on this gateway"


class CodeBlocks(HTMLParser):
    """Every ``<code data-lang>`` of a page, with its attributes and its text unescaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[dict[str, str], str]] = []
        self._open: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "code" and "data-lang" in found:
            self._open, self._text = found, []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "code" and self._open is not None:
            self.blocks.append((self._open, "".join(self._text)))
            self._open = None


def examples(site: Site, model: str) -> dict[str, str]:
    """The page's examples keyed ``lang``, ``lang/sdk`` or ``lang/step``."""
    page = httpx.get(f"{site.url}/docs/models/{model}")
    assert page.status_code == 200
    parser = CodeBlocks()
    parser.feed(page.text)
    found = {}
    for attrs, code in parser.blocks:
        key = "/".join(
            filter(None, (attrs["data-lang"], attrs.get("data-sdk"), attrs.get("data-step")))
        )
        found[key] = code
    return found


def run(argv: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=180, cwd=cwd, env={**os.environ}
    )
    assert result.returncode == 0, (argv, result.stdout[-2000:], result.stderr[-3000:])
    return result.stdout


def tsx() -> tuple[Path, Path]:
    """(folder with the openai package, the tsx binary), installing them from npm once."""
    target = CACHE / "ts-examples"
    binary = target / "node_modules" / ".bin" / "tsx"
    if binary.exists() and (target / "node_modules" / "openai").exists():
        return target, binary
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("the TypeScript examples need node and npm, which are not installed")
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(target), "openai", "tsx"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0 or not binary.exists():
        pytest.skip(f"could not install openai and tsx from npm: {result.stderr.strip()[-300:]}")
    return target, binary


def go() -> str:
    found = shutil.which("go")
    if found is None:
        pytest.skip("Go is not installed on this machine, so the Go examples cannot be run")
    return found


def with_key(code: str, key: str) -> str:
    assert API_KEY in code
    return code.replace(API_KEY, key)


@pytest.fixture
def answer(upstream: FakeOpenAI) -> str:
    upstream.enqueue(Reply(text=ANSWER))
    return ANSWER


CHAT_MODELS = ["claude-sonnet-4-6", "vendor/tiny-1"]


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_chat_curl_example_streams_the_answer(site: Site, answer: str, model: str) -> None:
    key = site.chat.key(credit="5")
    out = run(["bash", "-c", with_key(examples(site, model)["curl"], key)])
    events = [line.removeprefix("data: ") for line in out.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["model"] for c in chunks} == {model}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == answer


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("model", CHAT_MODELS)
def test_chat_python_examples_print_the_answer(
    site: Site, answer: str, model: str, sdk: str, tmp_path: Path
) -> None:
    name, key = site.chat.user(credit="5")
    script = tmp_path / "example.py"
    script.write_text(with_key(examples(site, model)[f"python/{sdk}"], key))
    assert run([sys.executable, str(script)]).strip() == answer
    # A real, billed call.
    assert site.chat.balance(name).balance < 5 * 10**9


def test_chat_typescript_example_prints_the_answer(site: Site, answer: str) -> None:
    folder, binary = tsx()
    key = site.chat.key(credit="5")
    script = folder / "chat-example.mts"
    script.write_text(with_key(examples(site, "claude-sonnet-4-6")["typescript/openai"], key))
    assert run([str(binary), str(script)], cwd=folder).strip() == answer


def test_chat_go_example_prints_the_answer(site: Site, answer: str, tmp_path: Path) -> None:
    binary = go()
    key = site.chat.key(credit="5")
    (tmp_path / "main.go").write_text(with_key(examples(site, "gpt-5.5")["go"], key))
    assert run([binary, "run", "main.go"], cwd=tmp_path).strip() == answer
    # What readers paste should already be gofmt-clean.
    assert run([binary, "fmt", "main.go"], cwd=tmp_path).strip() == ""


# One model per kind and upstream family; the stem separator's sample audio URL is the one
# placeholder the reader replaces, here with the fake media host's file.
TASK_MODELS = ["gpt-image-2", "veo3.1-fast", "audio-stem-separator"]


def prepared(site: Site, code: str, key: str) -> str:
    code = with_key(code, key)
    return code.replace(SAMPLE_MEDIA["audio"], site.fakes.media.base_url + "/song.wav")


def assert_media_urls(site: Site, lines: list[str], count: int) -> None:
    assert len(lines) == count, lines
    for url in lines:
        assert url.startswith(site.url + "/media/tasks/"), url
        assert httpx.get(url).status_code == 200


OUTPUTS = {"gpt-image-2": 1, "veo3.1-fast": 1, "audio-stem-separator": 2}


@pytest.mark.parametrize("model", TASK_MODELS)
def test_task_curl_examples_submit_and_poll(site: Site, model: str) -> None:
    _, key = site.tasks.user(credits="5000")
    found = examples(site, model)
    submitted = json.loads(run(["bash", "-c", prepared(site, found["curl/submit"], key)]))
    assert submitted["status"] == "processing", submitted
    poll = prepared(site, found["curl/poll"], key).replace(TASK_ID, submitted["id"])
    for _ in range(600):
        task = json.loads(run(["bash", "-c", poll]))
        if task["status"] != "processing":
            break
        time.sleep(0.05)
    assert task["status"] == "completed", task
    field = next(iter(task["output"]))
    assert_media_urls(site, task["output"][field], OUTPUTS[model])


@pytest.mark.parametrize("model", TASK_MODELS)
def test_task_python_examples_print_the_output_urls(site: Site, model: str, tmp_path: Path) -> None:
    name, key = site.tasks.user(credits="5000")
    script = tmp_path / "task.py"
    script.write_text(prepared(site, examples(site, model)["python"], key))
    lines = run([sys.executable, str(script)]).split()
    assert_media_urls(site, lines, OUTPUTS[model])
    assert site.tasks.balance(name) < 5000 * 10**6


def test_task_typescript_example_prints_the_output_urls(site: Site) -> None:
    folder, binary = tsx()
    _, key = site.tasks.user(credits="5000")
    script = folder / "task-example.mts"
    script.write_text(prepared(site, examples(site, "audio-stem-separator")["typescript"], key))
    assert_media_urls(site, run([str(binary), str(script)], cwd=folder).split(), 2)


def test_task_go_example_prints_the_output_urls(site: Site, tmp_path: Path) -> None:
    binary = go()
    _, key = site.tasks.user(credits="5000")
    (tmp_path / "main.go").write_text(prepared(site, examples(site, "gpt-image-2")["go"], key))
    assert_media_urls(site, run([binary, "run", "main.go"], cwd=tmp_path).split(), 1)
