"""Official SDK clients for tests, closed after each test so no connection outlives it."""

from __future__ import annotations

from typing import Any

import anthropic
import openai

_open: list[Any] = []


def openai_client(**options: Any) -> openai.OpenAI:
    client = openai.OpenAI(**options)
    _open.append(client)
    return client


def anthropic_client(**options: Any) -> anthropic.Anthropic:
    client = anthropic.Anthropic(**options)
    _open.append(client)
    return client


def close_all() -> None:
    while _open:
        _open.pop().close()
