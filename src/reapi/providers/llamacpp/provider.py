"""The ``llamacpp`` channel type: a llama-server that the gateway starts and supervises itself.

It speaks both wire formats natively (``/v1/chat/completions`` and ``/v1/messages``), so either
endpoint is relayed without translation, minus what the server adds beyond the formats
(``scrub``). The server sometimes closes a kept-alive connection
right after a stream (docs/local-model.md), and a request sent on such a connection fails
before any answer; every request therefore asks for ``Connection: close``, since a call must
never be retried once sent.
"""

from __future__ import annotations

from collections.abc import Mapping

from reapi.config import Channel
from reapi.protocols.relay import Scrub
from reapi.providers.base import WireFormat
from reapi.providers.llamacpp import scrub


class LlamaCppProvider:
    formats: tuple[WireFormat, ...] = ("openai", "anthropic")

    def url(self, channel: Channel, fmt: WireFormat) -> str:
        path = "/v1/chat/completions" if fmt == "openai" else "/v1/messages"
        return channel.base_url + path

    def scrub(self, fmt: WireFormat) -> Scrub | None:
        return scrub.openai_answer if fmt == "openai" else scrub.anthropic_answer

    def count_tokens_url(self, channel: Channel) -> str | None:
        return channel.base_url + "/v1/messages/count_tokens"

    def headers(
        self, channel: Channel, fmt: WireFormat, client_headers: Mapping[str, str]
    ) -> dict[str, str]:
        return {"content-type": "application/json", "connection": "close", **channel.headers}
