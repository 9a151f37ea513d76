"""The chat relay: admission checks, channel choice, one upstream call, relaying the answer.

Same wire format on both sides is the hot path: the upstream's bytes are relayed with only the
parsing correctness needs (the model name the client asked for, the usage chunk the client did
not ask for). Streams commit at the first byte: a failure after it becomes an in-stream error
event, never a normal end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import orjson

from reapi.config import ChatModel, Config, Group
from reapi.errors import (
    RETRY_IS_SAFE,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
    UpstreamError,
)
from reapi.money import format_usd
from reapi.protocols import openai_chat
from reapi.protocols.sse import SSEDecoder, encode_event
from reapi.protocols.usage import Usage
from reapi.providers.registry import provider_for
from reapi.services.billing import BillingService
from reapi.services.calls import CallRecord
from reapi.services.keys import Principal
from reapi.services.routing import Router
from reapi.services.upstream import Candidate, UpstreamCall, UpstreamClient
from reapi.storage.types import utcnow

log = logging.getLogger("reapi.chat")

DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class JsonReply:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class StreamReply:
    chunks: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)


ChatReply = JsonReply | StreamReply
CallFinished = Callable[[CallRecord], Awaitable[None]]


@dataclass(slots=True)
class _Plan:
    model: ChatModel
    group: Group
    max_tokens: int
    candidates: list[Candidate]
    include_usage: bool


class ChatService:
    def __init__(
        self, config: Config, router: Router, upstream: UpstreamClient, billing: BillingService
    ) -> None:
        self._config = config
        self._router = router
        self._upstream = upstream
        self._billing = billing

    def models_for(self, principal: Principal) -> list[ChatModel]:
        names = self._router.models_for(principal.groups)
        return [self._config.chat_models[n] for n in sorted(names) if n in self._config.chat_models]

    async def openai_chat(
        self,
        call: CallRecord,
        principal: Principal,
        body: dict[str, Any],
        client_headers: Mapping[str, str],
    ) -> ChatReply:
        openai_chat.validate_request(body)
        requested = body["model"]
        call.model = requested
        call.stream = bool(body.get("stream"))
        plan = self._plan_openai(principal, body)
        call.group = plan.group.name
        _check_key_controls(principal, requested)
        ticket = await self._billing.admit(
            call, principal, plan.model, plan.group, body, plan.max_tokens
        )
        opened = await self._upstream.open(plan.candidates, client_headers)
        call.channel = opened.channel.name
        headers = dict(ticket.limit.headers) if ticket.limit else {}
        if not call.stream:
            reply = await self._openai_json(call, opened, requested)
            cost = await self._billing.close(call)
            reply.headers.update(headers)
            reply.headers["x-reapi-cost"] = format_usd(cost)
            return reply
        return StreamReply(
            self._openai_stream(call, opened, requested, plan.include_usage), headers
        )

    def _plan_openai(self, principal: Principal, body: dict[str, Any]) -> _Plan:
        model_name: str = body["model"]
        group = self._group(principal, body.pop("group", None))
        model = self._config.chat_models.get(model_name)
        if model is None or not self._router.serves(model_name, group):
            raise ModelNotFound(
                f"The model '{model_name}' does not exist or is not available in group "
                f"'{group}'. GET /v1/models lists the models this key may use.",
                param="model",
            )
        self._check_sampling(model, body)
        limit_field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        max_tokens = body.get(limit_field)
        if max_tokens is None:
            body["max_tokens"] = max_tokens = model.default_max_tokens
        if not 1 <= max_tokens <= model.max_output_tokens:
            raise InvalidRequest(
                f"'{limit_field}' must be between 1 and {model.max_output_tokens} for "
                f"{model_name}, got {max_tokens}.",
                param=limit_field,
            )
        include_usage = False
        if body.get("stream"):
            options = body.get("stream_options") or {}
            include_usage = bool(options.get("include_usage"))
            # Billing needs the upstream's own count, whatever the client asked for.
            body["stream_options"] = {**options, "include_usage": True}
        candidates: list[Candidate] = []
        for channel in self._router.candidates(model_name, group):
            provider = provider_for(channel.type)
            upstream_model = channel.upstream_model(model_name)
            upstream_body = (
                body if upstream_model == model_name else {**body, "model": upstream_model}
            )
            candidates.append((channel, provider, "openai", orjson.dumps(upstream_body)))
        return _Plan(model, self._config.groups[group], max_tokens, candidates, include_usage)

    def _group(self, principal: Principal, requested: object) -> str:
        if requested is not None and not isinstance(requested, str):
            raise InvalidRequest("'group' must be a string.", param="group")
        group = requested or principal.default_group or "default"
        if group not in self._config.groups:
            raise InvalidRequest(f"There is no group named '{group}'.", param="group")
        if group not in principal.groups:
            raise PermissionDenied(
                f"This key may not use group '{group}' (allowed: {', '.join(principal.groups)}).",
                param="group",
            )
        return group

    @staticmethod
    def _check_sampling(model: ChatModel, body: dict[str, Any]) -> None:
        for name, (low, high) in (
            ("temperature", model.temperature_range),
            ("top_p", model.top_p_range),
        ):
            value = body.get(name)
            if value is not None and not low <= Decimal(str(value)) <= high:
                raise InvalidRequest(
                    f"'{name}' must be between {low} and {high} for {model.name}, got {value}.",
                    param=name,
                )

    async def _openai_json(
        self, call: CallRecord, opened: UpstreamCall, requested: str
    ) -> JsonReply:
        response = opened.response
        try:
            raw = await response.read()
        except (aiohttp.ClientError, TimeoutError):
            raise UpstreamError(
                f"The upstream connection broke before the answer was complete. {RETRY_IS_SAFE}"
            ) from None
        finally:
            response.release()
        call.mark_first_byte()
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"The upstream sent an invalid answer. {RETRY_IS_SAFE}") from None
        if not isinstance(answer, dict):
            raise UpstreamError(f"The upstream sent an invalid answer. {RETRY_IS_SAFE}")
        usage = answer.get("usage")
        if isinstance(usage, dict):
            call.usage = Usage.from_openai(usage)
        if answer.get("model") != requested:
            answer["model"] = requested
            raw = orjson.dumps(answer)
        call.status = 200
        call.outcome = "ok"
        return JsonReply(raw)

    async def _openai_stream(
        self, call: CallRecord, opened: UpstreamCall, requested: str, include_usage: bool
    ) -> AsyncIterator[bytes]:
        """Relay an OpenAI stream to an OpenAI client. The caller closes it (aclose) when done."""
        response = opened.response
        decoder = SSEDecoder()
        call.status = 200
        finished = False
        try:
            async for piece in response.content.iter_any():
                call.mark_first_byte()
                out: list[bytes] = []
                for event in decoder.feed(piece):
                    if event.data == b"[DONE]":
                        finished = True
                        continue
                    chunk = _relay_openai_chunk(call, event.data, requested, include_usage)
                    if chunk is not None:
                        out.append(chunk)
                if out:
                    yield b"".join(out)
            if not finished:
                for event in decoder.close():
                    if event.data == b"[DONE]":
                        finished = True
            if finished and call.outcome == "pending":
                call.outcome = "ok"
                # Settled before the end marker: a client that saw [DONE] has been charged once.
                cost = await self._billing.close(call)
                yield b": x-reapi-cost " + format_usd(cost).encode() + b"\n\n" + DONE
            elif call.outcome == "pending":
                call.outcome = "upstream_broke"
                yield _stream_error("The upstream ended the stream before finishing the answer.")
        except (aiohttp.ClientError, TimeoutError):
            call.outcome = "upstream_broke"
            yield _stream_error("The upstream connection broke in the middle of the answer.")
        except (asyncio.CancelledError, GeneratorExit):
            if call.outcome == "pending":
                call.outcome = "client_gone"
            raise
        finally:
            if call.outcome == "ok":
                response.release()
            else:
                # Closing (not releasing) the connection is what stops the upstream generating.
                response.close()


def _check_key_controls(principal: Principal, model: str) -> None:
    if principal.expires_at is not None and principal.expires_at <= utcnow():
        raise PermissionDenied(
            f"This key expired at {principal.expires_at:%Y-%m-%d %H:%M} UTC.", code="key_expired"
        )
    if principal.allowed_models is not None and model not in principal.allowed_models:
        raise PermissionDenied(
            f"This key may not use model '{model}' (allowed: "
            f"{', '.join(sorted(principal.allowed_models)) or 'none'}).",
            param="model",
            code="model_not_allowed",
        )


def _relay_openai_chunk(
    call: CallRecord, data: bytes, requested: str, include_usage: bool
) -> bytes | None:
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        log.warning("dropping a stream event that is not JSON from channel %s", call.channel)
        return None
    if not isinstance(chunk, dict):
        return None
    if "error" in chunk:
        call.outcome = "upstream_broke"
        return _stream_error("The upstream reported an error in the middle of the answer.")
    changed = False
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        call.usage = Usage.from_openai(usage)
        if not include_usage:
            if not chunk.get("choices"):
                return None
            del chunk["usage"]
            changed = True
    call.output_chars += openai_chat.count_output_chars(chunk)
    if chunk.get("model") != requested:
        chunk["model"] = requested
        changed = True
    return encode_event(orjson.dumps(chunk) if changed else data)


def _stream_error(message: str) -> bytes:
    return encode_event(
        orjson.dumps(
            {
                "error": {
                    "message": f"{message} {RETRY_IS_SAFE}",
                    "type": "api_error",
                    "param": None,
                    "code": "upstream_stream_broken",
                }
            }
        )
    )
