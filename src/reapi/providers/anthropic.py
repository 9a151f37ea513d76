"""Anthropic Messages upstreams.

API: https://docs.anthropic.com/en/api/messages (``POST {base_url}/v1/messages``, ``x-api-key``,
``anthropic-version``). ``base_url`` is the host, e.g. ``https://api.anthropic.com``. The
client's ``anthropic-version`` and ``anthropic-beta`` are forwarded (Claude Code depends on its
betas); without one the channel's configured version is sent.
"""

from __future__ import annotations

from collections.abc import Mapping

from reapi.config import Channel
from reapi.protocols.relay import Scrub
from reapi.providers.base import WireFormat


class AnthropicProvider:
    formats: tuple[WireFormat, ...] = ("anthropic",)

    def url(self, channel: Channel, fmt: WireFormat) -> str:
        return channel.base_url + "/v1/messages"

    def scrub(self, fmt: WireFormat) -> Scrub | None:
        return None

    def count_tokens_url(self, channel: Channel) -> str | None:
        return channel.base_url + "/v1/messages/count_tokens"

    def headers(
        self, channel: Channel, fmt: WireFormat, client_headers: Mapping[str, str]
    ) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "anthropic-version": client_headers.get("anthropic-version")
            or channel.anthropic_version,
            **channel.headers,
        }
        if beta := client_headers.get("anthropic-beta"):
            headers["anthropic-beta"] = beta
        key = channel.api_key.get_secret_value()
        if key:
            headers["x-api-key"] = key
        return headers
