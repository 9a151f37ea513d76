"""The operator CLI, run as a user runs it: the ``reapi`` console script in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.clients import openai_client
from tests.conftest import unique
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import free_port

REAPI = str(Path(sys.executable).with_name("reapi"))


def run(database_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REAPI_DATABASE_URL": database_url}
    result = subprocess.run([REAPI, *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_users_and_keys_lifecycle(database_url: str) -> None:
    name = unique("cli")
    assert (
        "created user"
        in run(database_url, "users", "create", name, "--group", "default", "--group", "vip").stdout
    )
    assert "already exists" in one_line_error(
        run(database_url, "users", "create", name, check=False)
    )
    created = run(
        database_url, "keys", "create", "--user", name, "--name", "laptop", "--group", "vip"
    )
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("sk-") and len(secret) >= 3 + 43
    listed = run(database_url, "keys", "list", "--user", name).stdout
    assert "laptop" in listed and "active" in listed and "group=vip" in listed
    assert secret not in listed
    key_id = listed.split("\t")[0]
    run(database_url, "keys", "revoke", key_id)
    assert "revoked" in run(database_url, "keys", "list", "--user", name).stdout
    assert "no key" in one_line_error(run(database_url, "keys", "revoke", "key_nope", check=False))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("keys", "create", "--user", "nobody-here"), "no user named"),
        (("users", "create", "bad name!"), "not a valid name"),
        (("keys", "list", "--user", "nobody-here"), "no user named"),
    ],
)
def test_operator_mistakes_are_one_line(
    database_url: str, args: tuple[str, ...], message: str
) -> None:
    assert message in one_line_error(run(database_url, *args, check=False))


def test_group_not_allowed_for_the_user(database_url: str) -> None:
    name = unique("cli")
    run(database_url, "users", "create", name)
    error = one_line_error(
        run(database_url, "keys", "create", "--user", name, "--group", "vip", check=False)
    )
    assert "may not use group 'vip'" in error


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/x", "sqlite://", "not a url", "postgresql://nobody@127.0.0.1:1/none"],
)
def test_bad_database_urls_are_one_line(url: str) -> None:
    error = one_line_error(run(url, "users", "list", check=False))
    assert "Error" in error


def test_serve_runs_the_gateway_end_to_end(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.reset()
    database_url = f"sqlite:///{tmp_path / 'serve.db'}"
    config = tmp_path / "reapi.yaml"
    config.write_text(
        "channels:\n"
        "  - name: main\n    type: openai\n"
        f"    base_url: {fake_openai.base_url}\n"
        "    api_key: ${UPSTREAM_KEY}\n    models: [gpt-5.5]\n"
        "models:\n  gpt-5.5: {free: true}\n"
    )
    run(database_url, "users", "create", "alice")
    secret = run(database_url, "keys", "create", "--user", "alice").stdout.strip().splitlines()[-1]
    port = free_port()
    env = {**os.environ, "REAPI_DATABASE_URL": database_url, "UPSTREAM_KEY": "sk-from-env"}
    server = subprocess.Popen(
        [REAPI, "serve", "--config", str(config), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90  # a process start: slow on a busy machine
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.1)
        client = openai_client(api_key=secret, base_url=base + "/v1", max_retries=0)
        stream = client.chat.completions.create(
            model="gpt-5.5", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert fake_openai.requests[0].headers["Authorization"] == "Bearer sk-from-env"
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=20)
    # One structured line per request, and never the key.
    assert secret not in stderr
    assert '"endpoint":"chat.completions"' in stderr and '"outcome":"ok"' in stderr
    assert secret.encode() not in (tmp_path / "serve.db").read_bytes()


def test_serve_refuses_a_broken_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "channels:\n  - name: x\n    type: openai\n"
        "    base_url: ftp://nope\n    models: [gpt-5.5]\n"
    )
    error = one_line_error(
        run(f"sqlite:///{tmp_path / 'x.db'}", "serve", "--config", str(config), check=False)
    )
    assert "base_url" in error


def test_serve_refuses_a_task_model_nobody_priced(tmp_path: Path) -> None:
    config = tmp_path / "reapi.yaml"
    config.write_text(
        "channels:\n"
        "  - {name: fal, type: fal, base_url: https://queue.fal.run, models: [veo3.1-fast]}\n"
    )
    result = run(
        f"sqlite:///{tmp_path / 'x.db'}", "serve", "--config", str(config), "--port", "1",
        check=False,
    )  # fmt: skip
    error = one_line_error(result)
    assert "'veo3.1-fast' is served by channel 'fal' but has no price" in error
    assert "models.veo3.1-fast.billing.credits" in error
