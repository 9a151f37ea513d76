"""Token usage in one shape for every wire format, as billing needs it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call.

    ``prompt_tokens`` counts every input token, cached or not (OpenAI's convention);
    ``cached_tokens`` and ``cache_write_tokens`` are the parts of it read from and written to a
    prompt cache (Anthropic reports those apart from ``input_tokens``: translators add them in).
    ``completion_tokens`` includes reasoning/thinking tokens.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def uncached_prompt_tokens(self) -> int:
        return max(0, self.prompt_tokens - self.cached_tokens - self.cache_write_tokens)

    @classmethod
    def from_openai(cls, usage: dict[str, object]) -> Usage:
        prompt = _int(usage.get("prompt_tokens"))
        details = usage.get("prompt_tokens_details")
        cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
        return cls(prompt, _int(usage.get("completion_tokens")), min(cached, prompt), 0)

    @classmethod
    def from_anthropic(cls, usage: dict[str, object]) -> Usage:
        read = _int(usage.get("cache_read_input_tokens"))
        write = _int(usage.get("cache_creation_input_tokens"))
        prompt = _int(usage.get("input_tokens")) + read + write
        return cls(prompt, _int(usage.get("output_tokens")), read, write)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
