"""The official JavaScript SDKs (``openai`` and ``@anthropic-ai/sdk`` from npm), unchanged,
against the gateway: every chat endpoint, streaming and not. Installed from npm into the
checkout's .test-cache/ on first use; skipped, saying why, when npm cannot provide them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Gateway
from tests.e2e.conftest import CACHE
from tests.fakes.openai_upstream import FakeOpenAI, Reply

SCRIPT = r"""
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";

const [base, key] = process.argv.slice(2);
const out = {};
const openai = new OpenAI({ apiKey: key, baseURL: base + "/v1", maxRetries: 0 });
const reply = await openai.chat.completions.create({
  model: "claude-sonnet-4-6", messages: [{ role: "user", content: "Hi" }], group: "default",
});
out.openai = reply.choices[0].message.content;
let streamed = "";
for await (const chunk of await openai.chat.completions.create({
  model: "claude-opus-4-7", messages: [{ role: "user", content: "Hi" }], stream: true,
})) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
}
out.openaiStream = streamed;
const response = await openai.responses.create({ model: "claude-sonnet-4-6", input: "Hi" });
out.responses = response.output_text;
const responseStream = openai.responses.stream({ model: "claude-opus-4-7", input: "Hi" });
out.responsesStream = (await responseStream.finalResponse()).output_text;
const anthropic = new Anthropic({ apiKey: key, baseURL: base, maxRetries: 0 });
const message = await anthropic.messages.create({
  model: "claude-opus-4-7", max_tokens: 64, messages: [{ role: "user", content: "Hi" }],
});
out.anthropic = message.content[0].text;
const stream = anthropic.messages.stream({
  model: "claude-sonnet-4-6", max_tokens: 64, messages: [{ role: "user", content: "Hi" }],
});
out.anthropicStream = (await stream.finalMessage()).content[0].text;
console.log(JSON.stringify(out));
"""


def sdk_dir() -> Path:
    target = CACHE / "js-sdks"
    if (target / "node_modules" / "openai").exists() and (
        target / "node_modules" / "@anthropic-ai" / "sdk"
    ).exists():
        return target
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("the JavaScript SDKs need node and npm, which are not installed")
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(target),
            "openai",
            "@anthropic-ai/sdk",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.skip(
            f"could not install the JavaScript SDKs from npm: {result.stderr.strip()[-300:]}"
        )
    return target


@pytest.mark.slow
def test_official_js_sdks(gateway_for_claude: Gateway, upstream: FakeOpenAI) -> None:
    target = sdk_dir()
    (target / "check.mjs").write_text(SCRIPT)
    _, key = gateway_for_claude.user(credit="5")
    upstream.enqueue(*[Reply(text="Hello from upstream") for _ in range(6)])
    result = subprocess.run(
        ["node", str(target / "check.mjs"), gateway_for_claude.url, key],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=target,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers == {
        "openai": "Hello from upstream",
        "openaiStream": "Hello from upstream",
        "responses": "Hello from upstream",
        "responsesStream": "Hello from upstream",
        "anthropic": "Hello from upstream",
        "anthropicStream": "Hello from upstream",
    }
    # Current Anthropic JS SDKs authenticate with a Bearer token and send a recent version date.
    native = [r for r in upstream.requests if r.path == "/v1/messages"]
    assert native and all(r.headers.get("anthropic-version") for r in native)
