"""Claude Code, unchanged, in print mode against the gateway (Anthropic channel behind it).

Claude Code is installed from npm into the checkout's .test-cache/ on first use (its native
binary comes from npm too); the test is skipped, saying why, when that cannot be done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Gateway
from tests.e2e.conftest import CACHE
from tests.fakes.openai_upstream import FakeOpenAI, Reply


def claude_binary() -> Path:
    target = CACHE / "claude-code"
    binary = target / "node_modules" / ".bin" / "claude"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("Claude Code needs npm, which is not installed")
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(target),
            "@anthropic-ai/claude-code",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0 or not binary.exists():
        pytest.skip(f"could not install Claude Code from npm: {result.stderr.strip()[-300:]}")
    return binary


@pytest.mark.slow
@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "claude-opus-4-7"])
def test_claude_code_print_mode(
    gateway_for_claude: Gateway, upstream: FakeOpenAI, tmp_path: Path, model: str
) -> None:
    binary = claude_binary()
    name, key = gateway_for_claude.user(credit="5")
    upstream.enqueue(*[Reply(text="The answer is 42.") for _ in range(8)])
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ANTHROPIC_BASE_URL": gateway_for_claude.url,
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    result = subprocess.run(
        [str(binary), "-p", "What is six times seven?", "--model", model],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "The answer is 42." in result.stdout
    messages = [r for r in upstream.requests if r.path in ("/v1/messages", "/v1/chat/completions")]
    assert messages, "Claude Code never reached the upstream"
    assert gateway_for_claude.balance(name).balance < 5 * 10**9
