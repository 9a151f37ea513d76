"""OpenAI Chat Completions upstreams: OpenAI itself and every compatible server.

API: https://platform.openai.com/docs/api-reference/chat (``POST {base_url}/chat/completions``,
``Authorization: Bearer``). ``base_url`` includes the version segment, e.g. ``.../v1``.
"""

from __future__ import annotations

from collections.abc import Mapping

from reapi.config import Channel
from reapi.protocols.relay import Scrub
from reapi.providers.base import WireFormat


class OpenAIProvider:
    formats: tuple[WireFormat, ...] = ("openai",)

    def url(self, channel: Channel, fmt: WireFormat) -> str:
        return channel.base_url + "/chat/completions"

    def scrub(self, fmt: WireFormat) -> Scrub | None:
        return None

    def count_tokens_url(self, channel: Channel) -> str | None:
        return None

    def headers(
        self, channel: Channel, fmt: WireFormat, client_headers: Mapping[str, str]
    ) -> dict[str, str]:
        headers = {"content-type": "application/json", **channel.headers}
        key = channel.api_key.get_secret_value()
        if key:
            headers["authorization"] = "Bearer " + key
        return headers
