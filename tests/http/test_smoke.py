from __future__ import annotations

import openai

from tests.conftest import Gateway
from tests.fakes.openai_upstream import FakeOpenAI


def test_non_streaming_and_streaming(gateway: Gateway, upstream: FakeOpenAI) -> None:
    client = openai.OpenAI(api_key=gateway.key(), base_url=gateway.url + "/v1", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "Hello"}]
    )
    assert reply.choices[0].message.content == "Hello! How can I help you today?"
    stream = client.chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "Hello"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello! How can I help you today?"
