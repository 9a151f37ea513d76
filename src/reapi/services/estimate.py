"""Token counts the gateway must guess, and the documented rules it guesses by.

Two different guesses, for two different jobs:

- ``prompt_bound`` is an upper bound for holds: a byte-level BPE token is at least one byte, so
  the UTF-8 size of all text in the request, plus a per-message overhead and a fixed allowance
  per image, cannot be exceeded by the real prompt. A hold sized on it always covers the charge.
- ``fair_tokens`` is a best estimate (4 characters per token) used only to bill a call whose
  upstream never reported usage (a client that left mid-stream): see docs/billing.md.
"""

from __future__ import annotations

from typing import Any

_MESSAGE_OVERHEAD = 8
_CHARS_PER_TOKEN = 4


def prompt_bound(body: dict[str, Any], image_tokens: int) -> tuple[int, int]:
    """(upper bound on prompt tokens, characters of prompt text) for a chat request of any
    wire format."""
    counter = _Counter(image_tokens)
    for key in (
        *("messages", "system", "tools", "tool_choice", "functions", "response_format"),
        *("input", "instructions", "text"),  # the Responses API's
    ):
        if key in body:
            counter.walk(body[key], key)
    messages = body.get("messages", body.get("input"))
    overhead = _MESSAGE_OVERHEAD * (len(messages) + 1) if isinstance(messages, list) else 0
    return counter.bytes + counter.images + overhead, counter.chars


def fair_tokens(chars: int) -> int:
    return -(-chars // _CHARS_PER_TOKEN)


class _Counter:
    __slots__ = ("bytes", "chars", "image_tokens", "images")

    def __init__(self, image_tokens: int) -> None:
        self.bytes = 0
        self.chars = 0
        self.images = 0
        self.image_tokens = image_tokens

    def walk(self, node: Any, key: str) -> None:
        if isinstance(node, str):
            self.bytes += len(node.encode())
            self.chars += len(node)
        elif isinstance(node, dict):
            if _is_image(node, key):
                # Upstreams bill an image by its pixels, not by the size of its encoding.
                self.images += self.image_tokens
                return
            for child_key, child in node.items():
                self.walk(child, child_key)
        elif isinstance(node, list):
            for child in node:
                self.walk(child, key)
        elif node is not None:
            self.bytes += 8


def _is_image(node: dict[str, Any], key: str) -> bool:
    # OpenAI content part {"type": "image_url", ...}; Anthropic block {"type": "image", ...};
    # Responses part {"type": "input_image", ...}. Documents are walked like text: their
    # base64 size bounds their tokens from above.
    return node.get("type") in ("image_url", "image", "input_image")
