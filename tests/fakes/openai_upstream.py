"""An upstream that speaks the OpenAI Chat Completions wire format (``/v1/chat/completions``)
and the Anthropic Messages wire format (``/v1/messages``, ``/v1/messages/count_tokens``), both
streaming and not.

Tests script its next answers (``enqueue``) and read what it received (``requests``). Streams
can be written in small byte pieces to split SSE events at awkward boundaries, broken off in the
middle, dribbled slowly to observe a client that leaves, or held silent after their headers like
a model thinking before its first token.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.server import LoopThread, free_port


@dataclass
class Reply:
    text: str = "Hello! How can I help you today?"
    prompt_tokens: int = 12
    completion_tokens: int = 9
    cached_tokens: int = 0
    finish_reason: str = "stop"
    tool_calls: list[dict[str, Any]] | None = None
    # Reasoning before the answer: a signed thinking block on /v1/messages (signature
    # "sig:" + the text), reasoning_content on /v1/chat/completions.
    thinking: str | None = None
    model: str | None = None  # default: echo the model of the request
    # Streaming shape:
    split_bytes: int | None = None  # write the SSE bytes in pieces of this size
    break_after: int | None = None  # drop the connection after this many chunks
    interval: float = 0.0  # pause between chunks
    # After the first chunk, wait until the test sets this (a stream surely in flight).
    resume: threading.Event | None = None
    send_usage: bool = True  # include a usage chunk when the request asks for it
    usage_in_last_choice_chunk: bool = False
    delay: float = 0.0  # before the response starts
    # The usage object exactly as sent, replacing the counts above (tests send wrong types,
    # negative and absurd numbers): OpenAI's shape on /v1/chat/completions, Anthropic's on
    # /v1/messages (where it goes into message_delta, and message_start gets none).
    usage: Any = None
    # Raw bytes written just before the stream event of that index (malformed events).
    inject: dict[int, bytes] = field(default_factory=dict)
    think: float = 0.0  # streams: after the response headers, before the first event
    # Answer only once the test sets it: a call held open for exactly as long as a test needs.
    release: threading.Event | None = None


@dataclass
class Fail:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    disconnected: bool = False
    chunks_sent: int = 0


class FakeOpenAI:
    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Recorded] = []
        self.script: deque[Reply | Fail] = deque()
        self._ids = itertools.count(1)
        self._loop = LoopThread()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeOpenAI:
        self._loop.call(self._start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._loop.call(self._runner.cleanup())
        self._loop.stop()

    def enqueue(self, *behaviours: Reply | Fail) -> None:
        self.script.extend(behaviours)

    def reset(self) -> None:
        self.requests.clear()
        self.script.clear()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _receive(self, request: web.Request) -> tuple[Recorded, Any, Reply | Fail]:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = raw
        record = Recorded(request.path, dict(request.headers), body)
        self.requests.append(record)
        return record, body, self.script.popleft() if self.script else Reply()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record, body, behaviour = await self._receive(request)
        if isinstance(behaviour, Fail):
            payload = behaviour.body
            if payload is None:
                payload = {
                    "error": {
                        "message": f"fake failure {behaviour.status}",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                }
            data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
            return web.Response(
                body=data,
                status=behaviour.status,
                headers=behaviour.headers,
                content_type="application/json",
            )
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour.release is not None:
            await asyncio.to_thread(behaviour.release.wait, 60)
        model = behaviour.model or (body.get("model") if isinstance(body, dict) else "x")
        if isinstance(body, dict) and body.get("stream"):
            return await self._stream(request, record, body, behaviour, model)
        choices = body.get("n") if isinstance(body, dict) else None
        return web.Response(
            body=orjson.dumps(self._completion(behaviour, model, choices or 1)),
            content_type="application/json",
        )

    async def _count_tokens(self, request: web.Request) -> web.Response:
        await self._receive(request)
        return web.json_response({"input_tokens": 42})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        record, body, behaviour = await self._receive(request)
        if isinstance(behaviour, Fail):
            payload = behaviour.body or {
                "type": "error",
                "error": {"type": "api_error", "message": f"fake failure {behaviour.status}"},
            }
            return web.Response(
                body=orjson.dumps(payload),
                status=behaviour.status,
                headers=behaviour.headers,
                content_type="application/json",
            )
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour.release is not None:
            await asyncio.to_thread(behaviour.release.wait, 60)
        model = behaviour.model or body.get("model")
        if body.get("stream"):
            events = self._anthropic_events(behaviour, model)
            return await self._write_events(request, record, behaviour, events)
        return web.Response(
            body=orjson.dumps(self._message(behaviour, model)), content_type="application/json"
        )

    @staticmethod
    def _stop_reason(reply: Reply) -> str:
        return {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}.get(
            reply.finish_reason, reply.finish_reason
        )

    def _anthropic_usage(self, reply: Reply, output: int) -> dict[str, Any]:
        return {
            "input_tokens": reply.prompt_tokens - reply.cached_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": reply.cached_tokens,
            "output_tokens": output,
        }

    def _message(self, reply: Reply, model: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if reply.thinking is not None:
            content.append(
                {
                    "type": "thinking",
                    "thinking": reply.thinking,
                    "signature": "sig:" + reply.thinking,
                }
            )
        if reply.tool_calls:
            for call in reply.tool_calls:
                content.append(
                    {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": call["function"]["name"],
                        "input": orjson.loads(call["function"]["arguments"]),
                    }
                )
        else:
            content.append({"type": "text", "text": reply.text})
        return {
            "id": f"msg_fake{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": self._stop_reason(reply),
            "stop_sequence": None,
            "usage": (
                reply.usage
                if reply.usage is not None
                else self._anthropic_usage(reply, reply.completion_tokens)
            ),
        }

    def _anthropic_events(self, reply: Reply, model: str) -> list[bytes]:
        def event(name: str, data: dict[str, Any]) -> bytes:
            return (
                b"event: "
                + name.encode()
                + b"\ndata: "
                + orjson.dumps({"type": name, **data})
                + b"\n\n"
            )

        start = self._message(reply, model)
        start["content"], start["stop_reason"] = [], None
        start["usage"] = (
            {"output_tokens": 1} if reply.usage is not None else self._anthropic_usage(reply, 1)
        )
        events = [event("message_start", {"message": start}), event("ping", {})]
        first = 0
        if reply.thinking is not None:
            first = 1
            block = {"type": "thinking", "thinking": ""}
            signature = {"type": "signature_delta", "signature": "sig:" + reply.thinking}
            events += [
                event("content_block_start", {"index": 0, "content_block": block}),
                event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "thinking_delta", "thinking": reply.thinking}},
                ),
                event("content_block_delta", {"index": 0, "delta": signature}),
                event("content_block_stop", {"index": 0}),
            ]
        if reply.tool_calls:
            for index, call in enumerate(reply.tool_calls, first):
                block = {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["function"]["name"],
                    "input": {},
                }
                events.append(
                    event("content_block_start", {"index": index, "content_block": block})
                )
                args = call["function"]["arguments"]
                for begin in range(0, len(args), 7):
                    delta = {"type": "input_json_delta", "partial_json": args[begin : begin + 7]}
                    events.append(event("content_block_delta", {"index": index, "delta": delta}))
                events.append(event("content_block_stop", {"index": index}))
        else:
            events.append(
                event(
                    "content_block_start",
                    {"index": first, "content_block": {"type": "text", "text": ""}},
                )
            )
            for i, word in enumerate(reply.text.split(" ")):
                delta = {"type": "text_delta", "text": word if i == 0 else " " + word}
                events.append(event("content_block_delta", {"index": first, "delta": delta}))
            events.append(event("content_block_stop", {"index": first}))
        stop = {"stop_reason": self._stop_reason(reply), "stop_sequence": None}
        usage = (
            reply.usage if reply.usage is not None else {"output_tokens": reply.completion_tokens}
        )
        events.append(event("message_delta", {"delta": stop, "usage": usage}))
        events.append(event("message_stop", {}))
        return events

    async def _write_events(
        self, request: web.Request, record: Recorded, reply: Reply, events: list[bytes]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)  # a StreamResponse sends its headers here, at once
        for index in sorted(reply.inject, reverse=True):
            events = [*events[:index], reply.inject[index], *events[index:]]
        try:
            if reply.think:
                await asyncio.sleep(reply.think)
            for index, event in enumerate(events):
                if reply.break_after is not None and index >= reply.break_after:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if reply.split_bytes:
                    for start in range(0, len(event), reply.split_bytes):
                        await response.write(event[start : start + reply.split_bytes])
                else:
                    await response.write(event)
                record.chunks_sent += 1
                if index == 0 and reply.resume is not None:
                    resume = reply.resume
                    await asyncio.get_running_loop().run_in_executor(None, resume.wait, 60)
                if reply.interval:
                    await asyncio.sleep(reply.interval)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            record.disconnected = True
            raise
        return response

    def _usage(self, reply: Reply) -> Any:
        if reply.usage is not None:
            return reply.usage
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    def _completion(self, reply: Reply, model: str, choices: int = 1) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
        if reply.thinking is not None:
            message["reasoning_content"] = reply.thinking
        if reply.tool_calls:
            message["content"] = None
            message["tool_calls"] = reply.tool_calls
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": index,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
                for index in range(choices)
            ],
            "usage": self._usage(reply),
        }

    def _chunks(self, reply: Reply, model: str, include_usage: bool) -> list[dict[str, Any]]:
        base = {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            out = {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                out["usage"] = None
            return out

        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if reply.thinking is not None:
            chunks.append(chunk({"reasoning_content": reply.thinking}))
        if reply.tool_calls:
            for index, call in enumerate(reply.tool_calls):
                args = call["function"]["arguments"]
                chunks.append(
                    chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": index,
                                    "id": call["id"],
                                    "type": "function",
                                    "function": {"name": call["function"]["name"], "arguments": ""},
                                }
                            ]
                        }
                    )
                )
                for start in range(0, len(args), 7):
                    piece = args[start : start + 7]
                    chunks.append(
                        chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                    )
        else:
            words = reply.text.split(" ")
            for i, word in enumerate(words):
                chunks.append(chunk({"content": word if i == 0 else " " + word}))
        last = chunk({}, reply.finish_reason)
        chunks.append(last)
        if include_usage and reply.send_usage:
            if reply.usage_in_last_choice_chunk:
                last["usage"] = self._usage(reply)
            else:
                chunks.append({**base, "choices": [], "usage": self._usage(reply)})
        return chunks

    async def _stream(
        self,
        request: web.Request,
        record: Recorded,
        body: dict[str, Any],
        reply: Reply,
        model: str,
    ) -> web.StreamResponse:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = self._chunks(reply, model, include_usage)
        events = [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks]
        events.append(b"data: [DONE]\n\n")
        return await self._write_events(request, record, reply, events)
