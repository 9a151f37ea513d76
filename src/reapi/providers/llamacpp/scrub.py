"""What llama-server adds to the wire formats beyond their specs, removed before a client sees
it (docs/local-model.md lists what the server sends).

OpenAI format: llama.cpp's own ``timings`` object, its build string as ``system_fingerprint``
(``b0-unknown``: not a backend fingerprint, and it names the server software), and the token
``id`` inside every ``logprobs`` entry go; the fields OpenAI's schema requires of an answer and
the server leaves out (``choices[].logprobs``, ``message.refusal``, ``logprobs.refusal``) come
in as null. Everything a chunk or answer keeps is a field of OpenAI's
``CreateChatCompletionResponse`` / ``CreateChatCompletionStreamResponse`` schemas, plus
``reasoning_content``, which the gateway itself sends for thinking. Anthropic format: the
message id, which the server writes as ``chatcmpl-...``, becomes a ``msg_`` one. Each function
edits one answer or stream event in place and says whether it changed anything, so the relay
re-encodes only then.
"""

from __future__ import annotations

import secrets
from typing import Any

# OpenAI's own fields; system_fingerprint is left out on purpose (see above).
_RESPONSE = frozenset(
    {
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "service_tier",
        "metadata",
        "moderation",
        "obfuscation",
    }
)
_CHOICE = frozenset({"index", "message", "delta", "finish_reason", "logprobs"})
_MESSAGE = frozenset(
    {
        "role",
        "content",
        "refusal",
        "tool_calls",
        "function_call",
        "annotations",
        "audio",
        "reasoning_content",
    }
)
_LOGPROB = frozenset({"token", "logprob", "bytes", "top_logprobs"})
_TOP_LOGPROB = frozenset({"token", "logprob", "bytes"})


def openai_answer(body: dict[str, Any]) -> bool:
    """A ``chat.completion`` or ``chat.completion.chunk`` from llama-server."""
    changed = _keep(body, _RESPONSE)
    choices = body.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, dict):
            continue
        changed |= _keep(choice, _CHOICE)
        for key in ("message", "delta"):
            if isinstance(choice.get(key), dict):
                changed |= _keep(choice[key], _MESSAGE)
        if isinstance(choice.get("message"), dict):
            changed |= _fill(choice, "logprobs") | _fill(choice["message"], "refusal")
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict):
            changed |= _fill(logprobs, "content") | _fill(logprobs, "refusal")
            for key in ("content", "refusal"):
                changed |= _keep_each(logprobs.get(key), _LOGPROB, nested=True)
    return changed


def anthropic_answer(body: dict[str, Any]) -> bool:
    """A Messages answer, or a stream event, from llama-server: only ``message_start`` carries
    the id."""
    kind = body.get("type")
    message = body.get("message") if kind == "message_start" else body
    if kind not in ("message", "message_start") or not isinstance(message, dict):
        return False
    message_id = message.get("id")
    if isinstance(message_id, str) and message_id.startswith("msg_"):
        return False
    message["id"] = "msg_" + secrets.token_hex(12)
    return True


def _keep(node: dict[str, Any], allowed: frozenset[str]) -> bool:
    extra = [key for key in node if key not in allowed]
    for key in extra:
        del node[key]
    return bool(extra)


def _fill(node: dict[str, Any], key: str) -> bool:
    if key in node:
        return False
    node[key] = None
    return True


def _keep_each(items: object, allowed: frozenset[str], *, nested: bool = False) -> bool:
    changed = False
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            changed |= _keep(item, allowed)
            if nested:
                changed |= _keep_each(item.get("top_logprobs"), _TOP_LOGPROB)
    return changed
