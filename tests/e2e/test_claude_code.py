"""Claude Code, unchanged, in print mode against the gateway (Anthropic channel behind it).

Claude Code is installed from npm into a cache outside the repository on first use (its native
binary comes from npm too); the test is skipped, saying why, when that cannot be done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from reapi.config import build_config
from reapi.settings import Settings
from tests.conftest import Gateway, start_gateway
from tests.fakes.openai_upstream import FakeOpenAI, Reply

CACHE = Path(os.environ.get("REAPI_TEST_CACHE", Path.home() / ".cache" / "reapi-tests"))


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


@pytest.fixture(scope="module")
def gateway_for_claude(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Gateway]:
    config = build_config(
        {
            "channels": [
                {
                    "name": "anthropic",
                    "type": "anthropic",
                    "base_url": fake_openai.anthropic_url,
                    "models": ["claude-sonnet-4-6"],
                },
                {
                    "name": "openai-compatible",
                    "type": "openai",
                    "base_url": fake_openai.base_url,
                    "models": ["claude-opus-4-7"],
                },
            ],
            "models": {
                "claude-sonnet-4-6": {"input_per_mtok": "3", "output_per_mtok": "15"},
                "claude-opus-4-7": {"input_per_mtok": "5", "output_per_mtok": "25"},
            },
        }
    )
    gateway = start_gateway(Settings(database_url=database_url), config)
    yield gateway
    gateway.server.stop()


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
