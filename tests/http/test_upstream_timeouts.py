"""Each channel's ``timeouts``: a connection not made within ``connect`` moves on to the next
channel (nothing was sent); an answer not started within ``first_byte`` is a 504 in the client's
envelope, or an in-stream error once the stream's headers went out; a stream silent for longer
than ``between_chunks`` ends with an in-stream error, never a normal end."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import anthropic
import httpx
import openai
import orjson
import pytest

from reapi.config import ConfigError, build_config
from reapi.settings import Settings
from tests.clients import anthropic_client, openai_client
from tests.conftest import Gateway, start_gateway
from tests.fakes.openai_upstream import FakeOpenAI, Reply

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def silent_tls() -> Iterator[str]:
    """An https base URL whose server takes the TCP connection and never says a word, so the
    TLS handshake, part of connecting, never ends."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"https://127.0.0.1:{listener.getsockname()[1]}/v1"


@pytest.fixture(scope="module")
def timed(fake_openai: FakeOpenAI, silent_tls: str, database_url: str) -> Iterator[Gateway]:
    config = build_config(
        {
            "channels": [
                {
                    "name": "silent",
                    "type": "openai",
                    "base_url": silent_tls,
                    "models": ["failover-model", "dead-model"],
                    "timeouts": {"connect": 0.5},
                },
                {
                    "name": "fallback",
                    "type": "openai",
                    "base_url": fake_openai.base_url,
                    "models": ["failover-model"],
                    "priority": 1,
                },
                {
                    "name": "thinker",
                    "type": "openai",
                    "base_url": fake_openai.base_url,
                    "models": ["thinking-model"],
                    "timeouts": {"first_byte": 3, "between_chunks": 1},
                },
            ],
            "models": {
                name: {"free": True} for name in ("failover-model", "dead-model", "thinking-model")
            },
        }
    )
    gateway = start_gateway(Settings(database_url=database_url), config)
    yield gateway
    gateway.server.stop()


def stream(gateway: Gateway, model: str) -> list[bytes]:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key()}"},
        json={"model": model, "messages": HELLO, "stream": True},
        timeout=30,
    )
    assert response.status_code == 200
    return [line[6:] for line in response.content.split(b"\n") if line.startswith(b"data: ")]


def test_a_channel_not_connected_in_time_is_skipped(timed: Gateway, upstream: FakeOpenAI) -> None:
    client = openai_client(api_key=timed.key(), base_url=timed.url + "/v1", max_retries=0)
    reply = client.chat.completions.create(model="failover-model", messages=HELLO)
    assert reply.choices[0].message.content
    assert len(upstream.requests) == 1


def test_no_channel_connected_in_time_is_504_in_each_envelope(timed: Gateway) -> None:
    client = openai_client(api_key=timed.key(), base_url=timed.url + "/v1", max_retries=0)
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="dead-model", messages=HELLO)
    assert raised.value.status_code == 504
    assert raised.value.code == "upstream_timeout"
    claude = anthropic_client(api_key=timed.key(), base_url=timed.url, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as failed:
        claude.messages.create(model="dead-model", max_tokens=16, messages=HELLO)  # type: ignore[arg-type]
    assert failed.value.status_code == 504
    body = failed.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "timeout_error"
    assert "safe to retry" in body["error"]["message"]


def test_an_answer_not_started_within_first_byte_is_504_and_not_retried(
    timed: Gateway, upstream: FakeOpenAI
) -> None:
    upstream.enqueue(Reply(delay=4.0))
    client = openai_client(api_key=timed.key(), base_url=timed.url + "/v1", max_retries=0)
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="thinking-model", messages=HELLO)
    assert raised.value.status_code == 504
    assert raised.value.code == "upstream_timeout"
    assert "within 3 s" in raised.value.message
    assert len(upstream.requests) == 1


def test_thinking_before_the_first_token_is_held_to_first_byte_not_between_chunks(
    timed: Gateway, upstream: FakeOpenAI
) -> None:
    # Headers at once, then longer than between_chunks (1 s) but within first_byte (3 s).
    upstream.enqueue(Reply(text="thought it through", think=2.0))
    events = stream(timed, "thinking-model")
    assert events[-1] == b"[DONE]"
    text = "".join(
        choice["delta"].get("content") or ""
        for event in events[:-1]
        for choice in orjson.loads(event)["choices"]
    )
    assert text == "thought it through"


def test_a_stream_not_started_within_first_byte_ends_with_an_error_event(
    timed: Gateway, upstream: FakeOpenAI
) -> None:
    upstream.enqueue(Reply(think=4.0))
    events = stream(timed, "thinking-model")
    assert b"[DONE]" not in events
    error = orjson.loads(events[-1])["error"]
    assert "did not start its answer within 3 s" in error["message"]
    assert "safe to retry" in error["message"]


def test_a_stream_silent_longer_than_between_chunks_ends_with_an_error_event(
    timed: Gateway, upstream: FakeOpenAI
) -> None:
    upstream.enqueue(Reply(text="a b c d e f", interval=2.0))
    events = stream(timed, "thinking-model")
    assert b"[DONE]" not in events
    assert len(events) >= 2  # something was relayed before the silence
    error = orjson.loads(events[-1])["error"]
    assert error["code"] == "upstream_stream_broken"
    assert "sent nothing for 1 s" in error["message"]


@pytest.mark.parametrize(
    ("channel", "complaint"),
    [
        ({"type": "openai", "timeouts": {"first_bite": 3}}, "timeouts.first_bite"),
        ({"type": "openai", "timeouts": {"between_chunks": 0}}, "greater than 0"),
        ({"type": "fal", "models": ["veo3.1-fast"], "timeouts": {}}, "chat channels only"),
    ],
)
def test_timeouts_are_checked_when_the_config_loads(
    channel: dict[str, object], complaint: str
) -> None:
    raw = {"name": "c", "base_url": "http://127.0.0.1:1/v1", "models": ["gpt-5.5"], **channel}
    with pytest.raises(ConfigError, match=complaint):
        build_config({"channels": [raw], "models": {"gpt-5.5": {"free": True}}})
