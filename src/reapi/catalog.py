"""The built-in chat model catalog: what the gateway knows about each model without any config.

Operators' ``models:`` entries merge over these, field by field. Prices are deliberately absent
(but for the local demo model's demo price): they are the operator's business, and a served
model without prices is refused at startup unless it is marked free (docs/configuration.md).
"""

from __future__ import annotations

from typing import Any

_CLAUDE_SAMPLING = {"temperature_range": ["0", "1"], "top_p_range": ["0", "1"]}

BUILTIN_CHAT_MODELS: dict[str, dict[str, Any]] = {
    # The local demo model (reapi serve --demo). Its prices are demo prices, not a market rate:
    # they exist so a first run shows billing working.
    "gemma-3-270m": {
        "owned_by": "google",
        "context_window": 4096,
        "max_output_tokens": 1024,
        "default_max_tokens": 256,
        "input_per_mtok": "0.10",
        "output_per_mtok": "0.40",
    },
    "gpt-5.5": {
        "owned_by": "openai",
        "context_window": 1_000_000,
        "max_output_tokens": 128_000,
        "max_tokens_field": "max_completion_tokens",
    },
    "gpt-5.4": {
        "owned_by": "openai",
        "context_window": 1_000_000,
        "max_output_tokens": 128_000,
        "max_tokens_field": "max_completion_tokens",
    },
    "claude-opus-4-8": {
        "owned_by": "anthropic",
        "context_window": 1_000_000,
        "max_output_tokens": 128_000,
        **_CLAUDE_SAMPLING,
    },
    "claude-opus-4-7": {
        "owned_by": "anthropic",
        "context_window": 1_000_000,
        "max_output_tokens": 128_000,
        **_CLAUDE_SAMPLING,
    },
    "claude-sonnet-4-6": {
        "owned_by": "anthropic",
        "context_window": 1_000_000,
        "max_output_tokens": 128_000,
        **_CLAUDE_SAMPLING,
    },
}
