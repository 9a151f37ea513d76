"""The built-in chat model catalog: what the gateway knows about each model without any config.

Operators' ``models:`` entries merge over these, field by field. Prices are deliberately absent
(but for the local demo model's demo price): they are the operator's business, and a served
model without prices is refused at startup unless it is marked free (docs/configuration.md).

Facts come from the models' public documentation. One it does not state is left out and named
in ``unknown`` (the gateway then works with its default, and the docs pages say the fact is not
public) until the operator sets it. ``capabilities`` and ``description`` exist for those pages.
"""

from __future__ import annotations

from typing import Any

# What a model's page may list; ChatModel.capabilities accepts these only.
CAPABILITIES = ("vision", "tools", "thinking", "prompt_caching", "video_input")

_CLAUDE_SAMPLING = {"temperature_range": ["0", "1"], "top_p_range": ["0", "1"]}

BUILTIN_CHAT_MODELS: dict[str, dict[str, Any]] = {
    # The local demo model (reapi serve --demo). Its prices are demo prices, not a market rate:
    # they exist so a first run shows billing working.
    "gemma-3-270m": {
        "owned_by": "google",
        "description": "Gemma 3 270M, run by this gateway itself on its own CPU: a tiny base "
        "model for trying the API, not for real work.",
        "context_window": 4096,
        "max_output_tokens": 1024,
        "default_max_tokens": 256,
        "input_per_mtok": "0.10",
        "output_per_mtok": "0.40",
    },
    "gpt-5.5": {
        "owned_by": "openai",
        "description": "OpenAI's frontier reasoning model, with adjustable reasoning effort "
        "and Tool Search for agent workflows with many tools.",
        "capabilities": ["thinking", "tools"],
        "context_window": 1_000_000,
        "max_output_tokens": 128_000,
        "max_tokens_field": "max_completion_tokens",
    },
    "gpt-5.4": {
        "owned_by": "openai",
        "description": "OpenAI's previous GPT-5 generation.",
        "unknown": ["context_window", "max_output_tokens"],
        "max_tokens_field": "max_completion_tokens",
    },
    "claude-opus-4-8": {
        "owned_by": "anthropic",
        "description": "Anthropic's strongest Opus, for the hardest turns: vision, prompt "
        "caching and tool use.",
        "capabilities": ["vision", "prompt_caching", "tools"],
        "context_window": 1_000_000,
        "max_output_tokens": 128_000,
        # Anthropic refuses thinking budgets on these; they think adaptively, given an effort.
        "adaptive_thinking": True,
        **_CLAUDE_SAMPLING,
    },
    "claude-opus-4-7": {
        "owned_by": "anthropic",
        "description": "Anthropic Opus for high-stakes coding and long context.",
        "unknown": ["max_output_tokens"],
        "context_window": 1_000_000,
        # Anthropic refuses thinking budgets on these; they think adaptively, given an effort.
        "adaptive_thinking": True,
        **_CLAUDE_SAMPLING,
    },
    "claude-sonnet-4-6": {
        "owned_by": "anthropic",
        "description": "Anthropic's balanced model with a fast first token: a good default "
        "route, with vision and tool use.",
        "capabilities": ["vision", "tools"],
        "context_window": 1_000_000,
        "max_output_tokens": 128_000,
        **_CLAUDE_SAMPLING,
    },
    "claude-fable-5": {
        "owned_by": "anthropic",
        "description": "Anthropic's tier above Opus, thinking adaptively on every turn, with "
        "vision and prompt caching.",
        "capabilities": ["thinking", "vision", "prompt_caching"],
        "context_window": 1_000_000,
        "max_output_tokens": 128_000,
        "adaptive_thinking": True,
        **_CLAUDE_SAMPLING,
    },
    "minimax/minimax-m3": {
        "owned_by": "minimax",
        "description": "MiniMax M3, an open-weight model with native thinking, image and video "
        "input, prompt caching and tool use.",
        "capabilities": ["thinking", "vision", "video_input", "prompt_caching", "tools"],
        "context_window": 1_000_000,
        "max_output_tokens": 512_000,
    },
    "deepseek-v4-flash": {
        "owned_by": "deepseek",
        "description": "DeepSeek V4 Flash, open-weight: thinking on by default, vision, tool "
        "use and context caching.",
        "capabilities": ["thinking", "vision", "tools", "prompt_caching"],
        "context_window": 1_000_000,
        "max_output_tokens": 384_000,
    },
    "deepseek-v4-pro": {
        "owned_by": "deepseek",
        "description": "DeepSeek V4 Pro, open-weight: thinking on by default, vision, tool use "
        "and context caching.",
        "capabilities": ["thinking", "vision", "tools", "prompt_caching"],
        "context_window": 1_000_000,
        "max_output_tokens": 384_000,
    },
}
