"""A fault of the gateway's own in the middle of a stream (a bug in a relay or translator):
the client still gets an error event in its own format and never an end marker, the call is
free, and it is recorded as the gateway's fault, not the upstream's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reapi.protocols import relay, translate
from reapi.services.billing import UsageQuery, usage_json
from tests.conftest import Gateway
from tests.fakes.openai_upstream import FakeOpenAI, Reply


def _fail_after_first_event(monkeypatch: pytest.MonkeyPatch, cls: Any) -> None:
    real = cls.feed
    seen = {"events": 0}

    def feed(self: Any, event: Any) -> list[bytes]:
        seen["events"] += 1
        if seen["events"] > 1:
            raise RuntimeError("a bug in the gateway")
        return list(real(self, event))

    monkeypatch.setattr(cls, "feed", feed)


@pytest.mark.parametrize(
    ("path", "model", "faulty", "end_marker"),
    [
        ("/v1/chat/completions", "gpt-5.5", relay.OpenAIRelay, b"data: [DONE]"),
        ("/v1/messages", "gpt-5.5", translate._Translation, b"event: message_stop"),
    ],
)
def test_a_gateway_fault_mid_stream_ends_with_an_error_event_and_is_free(
    gateway: Gateway,
    upstream: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    model: str,
    faulty: Any,
    end_marker: bytes,
) -> None:
    name, key = gateway.user(credit="1")
    upstream.enqueue(Reply(text="one two three four five six"))
    _fail_after_first_event(monkeypatch, faulty)
    response = httpx.post(
        gateway.url + path,
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": model,
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "Hello"}],
        },
        timeout=30,
    )
    monkeypatch.undo()
    assert response.status_code == 200
    assert end_marker not in response.content
    assert b"The gateway failed in the middle of the answer" in response.content
    if path == "/v1/messages":
        assert b"event: error" in response.content
    else:
        assert b'"error"' in response.content
    state = gateway.balance(name)
    assert (state.balance, state.held) == (10**9, 0)
    (record,) = [usage_json(r) for r in gateway.billing(lambda b: b.usage(name, UsageQuery()))]
    assert record["outcome"] == "gateway_error" and record["cost"] == "0.00"
