"""Channel type -> adapter. A new upstream API is one module plus one line here."""

from __future__ import annotations

from reapi.providers.anthropic import AnthropicProvider
from reapi.providers.base import Provider
from reapi.providers.llamacpp.provider import LlamaCppProvider
from reapi.providers.openai import OpenAIProvider

PROVIDERS: dict[str, Provider] = {
    "openai": OpenAIProvider(),
    "anthropic": AnthropicProvider(),
    "llamacpp": LlamaCppProvider(),
}


def provider_for(channel_type: str) -> Provider:
    try:
        return PROVIDERS[channel_type]
    except KeyError:
        raise ValueError(
            f"unknown channel type {channel_type!r} (known: {', '.join(sorted(PROVIDERS))})"
        ) from None
