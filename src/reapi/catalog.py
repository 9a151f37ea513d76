"""The built-in chat model catalog: what the gateway knows about each model without any config.

Operators' ``models:`` entries merge over these, field by field. Prices are deliberately absent:
they are the operator's business (see docs/configuration.md), and a model without prices is only
served when billing is off for it.
"""

from __future__ import annotations

from typing import Any

_CLAUDE_SAMPLING = {"temperature_range": ["0", "1"], "top_p_range": ["0", "1"]}

BUILTIN_CHAT_MODELS: dict[str, dict[str, Any]] = {
    "gpt-5.5": {"owned_by": "openai", "context_window": 1_000_000, "max_output_tokens": 128_000},
    "gpt-5.4": {"owned_by": "openai", "context_window": 1_000_000, "max_output_tokens": 128_000},
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
