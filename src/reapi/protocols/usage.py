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

    ``malformed`` says the upstream's report had a count that is not a count (a string, a
    float, a negative number): the fields then hold 0 for it, and billing must not believe the
    report (docs/billing.md, "When the upstream's numbers are wrong").
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    malformed: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def uncached_prompt_tokens(self) -> int:
        return max(0, self.prompt_tokens - self.cached_tokens - self.cache_write_tokens)

    @classmethod
    def from_openai(cls, usage: dict[str, object]) -> Usage:
        counts = _Counts()
        prompt = counts.read(usage.get("prompt_tokens"))
        completion = counts.read(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details")
        cached = counts.read(details.get("cached_tokens")) if isinstance(details, dict) else 0
        return cls(prompt, completion, min(cached, prompt), 0, counts.malformed)

    @classmethod
    def from_anthropic(cls, usage: dict[str, object]) -> Usage:
        counts = _Counts()
        read = counts.read(usage.get("cache_read_input_tokens"))
        write = counts.read(usage.get("cache_creation_input_tokens"))
        prompt = counts.read(usage.get("input_tokens")) + read + write
        output = counts.read(usage.get("output_tokens"))
        return cls(prompt, output, read, write, counts.malformed)


class _Counts:
    __slots__ = ("malformed",)

    def __init__(self) -> None:
        self.malformed = False

    def read(self, value: object) -> int:
        """A token count; an absent or null one is 0 (upstreams leave out what they did not
        use), anything else that is not a non-negative integer marks the report malformed."""
        if value is None:
            return 0
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        self.malformed = True
        return 0
