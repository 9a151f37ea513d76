"""The fixed request and response bodies every run uses.

Both mocks (nginx and the Python delay mock) and every load generator take their
bytes from here, so direct and proxied runs exchange exactly the same payloads.
The responses are shaped like real OpenAI chat completions, usage included.
"""

from __future__ import annotations

import json

MODEL = "gpt-5.5"
STREAM_MODEL = "gpt-5.5-sse"  # routed to the fixed SSE stream on nginx
SLOW_MODEL = "gpt-5.5-slow"  # routed to the delay mock (TTFT and inter-token delay)

_ANSWER = (
    "The gateway relays this answer in twenty small pieces so that every proxy "
    "under test has to forward each chunk as it arrives rather than buffer it."
)
_WORDS = _ANSWER.split(" ")
_CREATED = 1767225600


def request_body(model: str = MODEL, stream: bool = False) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "Explain in one sentence what an API gateway does."},
        ],
        "max_completion_tokens": 64,  # gpt-5-class models reject temperature and max_tokens
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


def _usage(completion_tokens: int) -> dict[str, object]:
    return {
        "prompt_tokens": 27,
        "completion_tokens": completion_tokens,
        "total_tokens": 27 + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(model: str = MODEL) -> bytes:
    text = " ".join(_WORDS[:20])
    body = {
        "id": "chatcmpl-bench0000000000000000000001",
        "object": "chat.completion",
        "created": _CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(20),
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
    }
    return json.dumps(body).encode()


def sse_events(model: str = MODEL, chunks: int = 20) -> list[bytes]:
    """One `data:` event per list item: role, `chunks` content deltas, finish, usage, [DONE]."""

    def event(choices: list[object], usage: object = None) -> bytes:
        body = {
            "id": "chatcmpl-bench0000000000000000000002",
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": choices,
            "usage": usage,
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    def delta(d: dict[str, object], finish: str | None = None) -> list[object]:
        return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]

    words = [_WORDS[i % len(_WORDS)] for i in range(chunks)]
    events = [event(delta({"role": "assistant", "content": "", "refusal": None}))]
    events += [event(delta({"content": (" " if i else "") + w})) for i, w in enumerate(words)]
    events.append(event(delta({}, "stop")))
    events.append(event([], _usage(chunks)))
    events.append(b"data: [DONE]\n\n")
    return events


def sse_stream(model: str = MODEL, chunks: int = 20) -> bytes:
    return b"".join(sse_events(model, chunks))
