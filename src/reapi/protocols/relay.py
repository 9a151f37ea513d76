"""Same-format stream relays: upstream and client speak one wire format, so events pass through
with only what correctness needs: the model name the client asked for, the usage chunk the
client did not ask for, the running counts billing keeps, and, for the few upstreams whose
provider has a ``scrub``, what they add beyond the format. They follow the
``translate.StreamTranslator`` contract, so the chat service drives every stream the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from reapi.protocols import openai_chat
from reapi.protocols.canonical import MALFORMED_EVENT
from reapi.protocols.openai_stream import DONE
from reapi.protocols.sse import SSEEvent, encode_event
from reapi.protocols.usage import Usage

# Edits one answer or stream event of an upstream in place to what its wire format's spec
# allows; True when it changed anything. Providers supply one for upstreams that need it.
Scrub = Callable[[dict[str, Any]], bool]


class OpenAIRelay:
    __slots__ = (
        "_done",
        "_include_usage",
        "_model",
        "_scrub",
        "finished",
        "output_chars",
        "usage",
    )

    def __init__(self, *, model: str, include_usage: bool, scrub: Scrub | None = None) -> None:
        self._model = model
        self._include_usage = include_usage
        self._scrub = scrub
        self._done = False
        self.usage: Usage | None = None
        self.output_chars = 0
        self.finished = False

    @property
    def done(self) -> bool:
        """The client's stream is over (finished, or ended by an error): read no further."""
        return self._done

    def feed(self, event: SSEEvent) -> list[bytes]:
        if self._done:
            return []
        if event.data == b"[DONE]":
            self._done = self.finished = True
            return [DONE]
        try:
            chunk = orjson.loads(event.data)
            if not isinstance(chunk, dict):
                raise TypeError("an event must be a JSON object")
            return self._relay(event, chunk)
        except (ValueError, TypeError, AttributeError, KeyError):
            if event.data.strip() == b"[DONE]":
                return self.feed(SSEEvent(b"[DONE]"))
            return self.error(MALFORMED_EVENT)

    def _relay(self, event: SSEEvent, chunk: dict[str, Any]) -> list[bytes]:
        if "error" in chunk:
            return self.error("The upstream reported an error in the middle of the answer.")
        if not _well_formed(chunk):
            return self.error(MALFORMED_EVENT)
        changed = self._scrub is not None and self._scrub(chunk)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage.from_openai(usage)
            if not self._include_usage:
                if not chunk.get("choices"):
                    return []
                del chunk["usage"]
                changed = True
        self.output_chars += openai_chat.count_output_chars(chunk)
        if chunk.get("model") != self._model:
            chunk["model"] = self._model
            changed = True
        return [encode_event(orjson.dumps(chunk) if changed else event.data)]

    def error(self, message: str) -> list[bytes]:
        if self._done:
            return []
        self._done = True
        body = {
            "error": {
                "message": message,
                "type": "api_error",
                "param": None,
                "code": "upstream_stream_broken",
            }
        }
        return [encode_event(orjson.dumps(body))]

    def close(self) -> list[bytes]:
        return []


class AnthropicRelay:
    __slots__ = ("_done", "_input", "_model", "_scrub", "finished", "output_chars", "usage")

    def __init__(self, *, model: str, scrub: Scrub | None = None) -> None:
        self._model = model
        self._scrub = scrub
        self._done = False
        self._input = Usage()
        self.usage: Usage | None = None
        self.output_chars = 0
        self.finished = False

    @property
    def done(self) -> bool:
        """The client's stream is over (finished, or ended by an error): read no further."""
        return self._done

    def feed(self, event: SSEEvent) -> list[bytes]:
        if self._done:
            return []
        try:
            data: Any = orjson.loads(event.data)
            if not isinstance(data, dict):
                raise TypeError("an event must be a JSON object")
            return self._relay(event, data)
        except (ValueError, TypeError, AttributeError, KeyError):
            return self.error(MALFORMED_EVENT)

    def _relay(self, event: SSEEvent, data: dict[str, Any]) -> list[bytes]:
        name = event.event or data.get("type")
        raw = event.data
        if self._scrub is not None and self._scrub(data):
            raw = orjson.dumps(data)
        if name in _OBJECT_IN and not isinstance(data.get(_OBJECT_IN[name]), dict):
            return self.error(MALFORMED_EVENT)
        if name == "message_start":
            message = data.get("message")
            if isinstance(message, dict):
                if isinstance(message.get("usage"), dict):
                    self._input = Usage.from_anthropic(message["usage"])
                    self.usage = Usage(
                        self._input.prompt_tokens,
                        0,
                        self._input.cached_tokens,
                        self._input.cache_write_tokens,
                        self._input.malformed,
                    )
                if message.get("model") != self._model:
                    message["model"] = self._model
                    raw = orjson.dumps(data)
        elif name == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict):
                for key in ("text", "partial_json", "thinking"):
                    value = delta.get(key)
                    if isinstance(value, str):
                        self.output_chars += len(value)
        elif name == "message_delta":
            usage = data.get("usage")
            if isinstance(usage, dict):
                self.usage = self._merge(usage)
        elif name == "message_stop":
            self._done = self.finished = True
        elif name == "error":
            self._done = True
        return [encode_event(raw, name)]

    def _merge(self, usage: dict[str, Any]) -> Usage:
        # message_delta carries cumulative output tokens; newer API versions repeat the input
        # counts there too, and then those are the final word.
        reported = Usage.from_anthropic(usage)
        prompt = reported if "input_tokens" in usage else self._input
        return Usage(
            prompt.prompt_tokens,
            reported.completion_tokens,
            prompt.cached_tokens,
            prompt.cache_write_tokens,
            reported.malformed or prompt.malformed,
        )

    def error(self, message: str) -> list[bytes]:
        if self._done:
            return []
        self._done = True
        body = {"type": "error", "error": {"type": "api_error", "message": message}}
        return [encode_event(orjson.dumps(body), "error")]

    def close(self) -> list[bytes]:
        return []


def _well_formed(chunk: dict[str, Any]) -> bool:
    """The shapes every client reads: ``choices`` a list of objects, each ``delta`` an object
    (or absent), its ``tool_calls`` a list of objects (or absent)."""
    choices = chunk.get("choices", ())
    if not isinstance(choices, list | tuple):
        return False
    for choice in choices:
        if not isinstance(choice, dict):
            return False
        delta = choice.get("delta")
        if delta is None:
            continue
        if not isinstance(delta, dict):
            return False
        calls = delta.get("tool_calls")
        if calls is not None and not (
            isinstance(calls, list) and all(isinstance(c, dict) for c in calls)
        ):
            return False
    return True


# Anthropic events and the member every client reads as an object.
_OBJECT_IN = {
    "message_start": "message",
    "content_block_start": "content_block",
    "content_block_delta": "delta",
    "message_delta": "delta",
}
