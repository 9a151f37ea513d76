"""What ``reapi serve --demo`` sets up and prints, without running its engines: the demo user's
credits and keys across restarts, and commands in the banner that parse and name the demo's
settings. tests/test_local_model.py runs the printed commands against the real engines."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reapi.errors import AuthenticationFailed
from reapi.money import credits_to_units, usd_to_units
from reapi.services.billing import BillingService
from reapi.services.demo import (
    DEMO_CREDIT,
    DEMO_MAX_TOKENS,
    DEMO_MODEL,
    DEMO_PROMPT,
    DEMO_SPEECH,
    DEMO_TASK_CREDITS,
    DEMO_TEMPERATURE,
    DemoAccess,
    banner,
    demo_config,
    demo_speaks,
    prepare_demo,
)
from reapi.services.keys import KeyService
from reapi.services.limits import LocalLimiter
from reapi.storage import migrate
from reapi.storage.db import Database


@pytest.fixture
def demo_database(tmp_path: Path) -> str:
    # The demo's own database: the demo user is a fixed name, so it gets a fresh one.
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
async def services(demo_database: str) -> AsyncIterator[tuple[KeyService, BillingService]]:
    db = Database(demo_database)
    yield KeyService(db), BillingService(db, LocalLimiter(), node_id="tests")
    await db.dispose()


async def test_credits_come_once_per_workspace_and_each_start_replaces_the_keys(
    services: tuple[KeyService, BillingService],
) -> None:
    keys, billing = services
    first = await prepare_demo(keys, billing, speech=True)
    assert first.secret.startswith("sk-") and (first.tasks_secret or "").startswith("rk_live_")
    assert first.balance == usd_to_units(DEMO_CREDIT)
    assert first.task_balance == credits_to_units(DEMO_TASK_CREDITS)
    second = await prepare_demo(keys, billing, speech=True)
    assert (second.balance, second.task_balance) == (first.balance, first.task_balance)
    assert second.revoked == 2  # the chat and the tasks key of the first start
    for old, workspace in ((first.secret, "chat"), (first.tasks_secret, "tasks")):
        with pytest.raises(AuthenticationFailed):
            await keys.authenticate(old, workspace=workspace)
    assert (await keys.authenticate(second.tasks_secret, workspace="tasks")).user_id > 0


async def test_a_demo_database_from_before_speech_gets_its_task_credits(
    services: tuple[KeyService, BillingService],
) -> None:
    keys, billing = services
    without = await prepare_demo(keys, billing)
    assert without.tasks_secret is None
    assert (await billing.balance("demo", "tasks")).balance == 0
    later = await prepare_demo(keys, billing, speech=True)
    assert later.task_balance == credits_to_units(DEMO_TASK_CREDITS)


def printed_body(text: str, marker: str) -> str:
    """The shell-quoted ``-d`` argument of the command containing ``marker``."""
    found = re.search(re.escape(marker) + r".*? -d '(.*?)'", text, re.DOTALL)
    assert found is not None, text
    return found.group(1)


def printed_python(text: str, start: str) -> str:
    """The shell-quoted ``python -c`` program that begins with ``start``."""
    found = re.search(r"-c '(" + re.escape(start) + r".*?)'", text, re.DOTALL)
    assert found is not None, text
    return found.group(1)


def test_the_banner_commands_parse_and_carry_the_demo_settings() -> None:
    access = DemoAccess("sk-chat", 10**9, 0, "rk_live_tasks", 10**8)
    text = banner("http://127.0.0.1:8000", access)
    assert "small BASE model" in text and "temperature 0" in text
    request = json.loads(printed_body(text, "curl -N"))
    assert request == {
        "model": DEMO_MODEL,
        "max_tokens": DEMO_MAX_TOKENS,
        "temperature": DEMO_TEMPERATURE,
        "stream": True,
        "messages": [{"role": "user", "content": DEMO_PROMPT}],
    }
    for sdk in ("from openai import OpenAI", "from anthropic import Anthropic"):
        code = printed_python(text, sdk)
        constants = {n.value for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Constant)}
        assert {DEMO_PROMPT, DEMO_MAX_TOKENS, DEMO_TEMPERATURE} <= constants, code
    assert json.loads(printed_body(text, "/api/v1/audio/generations")) == DEMO_SPEECH
    compile(printed_python(text, "import json, sys"), "read the task id", "exec")
    assert "/api/v1/tasks/$TASK" in text and "rk_live_tasks" in text


def test_without_the_tts_extra_the_banner_says_how_to_add_it() -> None:
    text = banner("http://127.0.0.1:8000", DemoAccess("sk-chat", 10**9, 0))
    assert "pip install 'reapi[tts]'" in text
    assert "/api/v1/audio/generations" not in text


def test_speech_is_configured_only_when_asked_or_installed() -> None:
    assert demo_speaks(demo_config(speech=True))
    assert not demo_speaks(demo_config(speech=False))
    local = demo_config(speech=False).channels[0]
    assert local.type == "llamacpp" and local.options["chat_template"] == "plain"
