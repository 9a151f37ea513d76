"""The chat relay: admission checks, channel choice, one upstream call, relaying the answer.

Every endpoint (OpenAI Chat Completions, Anthropic Messages, the OpenAI Responses API) can reach
any channel. When the client and the chosen channel speak the same wire format the upstream's
bytes are relayed with only the parsing correctness needs (the hot path); otherwise the request,
the answer and the stream are translated (``reapi.protocols.translate``). Streams commit at the
first byte: a failure after it becomes an in-stream error event, never a normal end, and a
completed stream is settled before its end marker goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import aiohttp
import orjson

from reapi.config import Channel, ChatModel, Config, Group
from reapi.errors import (
    RETRY_IS_SAFE,
    InvalidRequest,
    ModelNotFound,
    UpstreamError,
)
from reapi.money import format_usd
from reapi.protocols import anthropic_messages, openai_chat, output, responses, translate
from reapi.protocols.output import OutputBound
from reapi.protocols.relay import AnthropicRelay, OpenAIRelay
from reapi.protocols.responses_stream import END_MARKERS as RESPONSES_END_MARKERS
from reapi.protocols.sse import SSEDecoder
from reapi.protocols.usage import Usage
from reapi.providers.base import WireFormat
from reapi.providers.registry import provider_for
from reapi.services import estimate
from reapi.services.billing import BillingService
from reapi.services.calls import CallRecord
from reapi.services.keys import Principal
from reapi.services.routing import Router
from reapi.services.upstream import Candidate, UpstreamCall, UpstreamClient, timed_out

# What a client may speak: the upstream formats, and the Responses API, which is always
# translated (no channel speaks it yet).
ClientFormat = Literal["openai", "anthropic", "responses"]

_VALIDATORS = {
    "openai": openai_chat.validate_request,
    "anthropic": anthropic_messages.validate_request,
    "responses": responses.validate_request,
}

log = logging.getLogger("reapi.chat")

_ANSWER_CHARS = {
    "openai": openai_chat.count_answer_chars,
    "anthropic": anthropic_messages.count_answer_chars,
}

# How each wire format ends a completed stream.
_END_MARKERS = (b"data: [DONE]", b"event: message_stop", *RESPONSES_END_MARKERS)
# The field each client format bounds output with (what the bound is written back into).
_OUTPUT_FIELD = {
    "openai": "max_tokens",
    "anthropic": "max_tokens",
    "responses": "max_output_tokens",
}


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


@dataclass(slots=True)
class _Plan:
    client: ClientFormat
    body: dict[str, Any]
    requested: str
    model: ChatModel
    group: Group
    output: OutputBound
    include_usage: bool
    candidates: list[Candidate]
    # What a Responses answer repeats from its request (None for the other formats).
    echo: responses.Echo | None = None


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
        if principal.allowed_models is not None:
            names &= principal.allowed_models
        return [self._config.chat_models[n] for n in sorted(names) if n in self._config.chat_models]

    async def serve(
        self,
        client: ClientFormat,
        call: CallRecord,
        principal: Principal,
        body: dict[str, Any],
        headers: Mapping[str, str],
    ) -> ChatReply:
        """One chat call in the client's wire format."""
        _VALIDATORS[client](body)
        return await self._serve(
            call, principal, self._plan(call, principal, body, client), headers
        )

    async def count_tokens(
        self, principal: Principal, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """Anthropic's count_tokens: asked of an Anthropic channel when the model has one, else
        estimated (4 characters per token of the request's text, see docs/api.md)."""
        model_name: str = anthropic_messages.validate_count_tokens(body)["model"]
        group = self._group(principal, body.pop("group", None))
        principal.check(model=model_name, group=group.name)
        self._model(model_name, group.name)
        for channel in self._router.candidates(model_name, group.name):
            provider = provider_for(channel.type)
            url = provider.count_tokens_url(channel)
            if url is None or "anthropic" not in provider.formats:
                continue
            upstream_body = {**body, "model": channel.upstream_model(model_name)}
            return await self._upstream.post_json(
                url,
                provider.headers(channel, "anthropic", headers),
                orjson.dumps(upstream_body),
                channel,
            )
        _, chars = estimate.prompt_bound(body, 0)
        return {"input_tokens": estimate.fair_tokens(chars)}

    # Planning ----------------------------------------------------------------------------

    def _plan(
        self, call: CallRecord, principal: Principal, body: dict[str, Any], client: ClientFormat
    ) -> _Plan:
        requested: str = body["model"]
        call.model = requested
        call.stream = bool(body.get("stream"))
        group = self._group(principal, body.pop("group", None))
        call.group = group.name
        principal.check(model=requested, group=group.name)
        model = self._model(requested, group.name)
        _check_sampling(model, body)
        bound = _output_bound(model, body, client)
        include_usage = False
        if client == "openai" and call.stream:
            options = body.get("stream_options") or {}
            include_usage = bool(options.get("include_usage"))
            # Billing needs the upstream's own count, whatever the client asked for.
            body["stream_options"] = {**options, "include_usage": True}
        echo = responses.Echo.of(body, model=requested) if client == "responses" else None
        candidates: list[Candidate] = []
        for channel in self._router.candidates(requested, group.name):
            provider = provider_for(channel.type)
            fmt: WireFormat = client if client in provider.formats else provider.formats[0]
            candidates.append(
                (channel, provider, fmt, _body_for(body, client, fmt, channel, model))
            )
        return _Plan(client, body, requested, model, group, bound, include_usage, candidates, echo)

    def _model(self, name: str, group: str) -> ChatModel:
        model = self._config.chat_models.get(name)
        if model is None or not self._router.serves(name, group):
            raise ModelNotFound(
                f"The model '{name}' does not exist or is not available in group '{group}'. "
                "GET /v1/models lists the models this key may use.",
                param="model",
            )
        if model.kind != "chat":
            raise InvalidRequest(
                f"'{name}' is an {model.kind} model: chat endpoints do not serve it.",
                param="model",
            )
        return model

    def _group(self, principal: Principal, requested: object) -> Group:
        if requested is not None and not isinstance(requested, str):
            raise InvalidRequest("'group' must be a string.", param="group")
        name = requested or principal.default_group or "default"
        group = self._config.groups.get(name)
        if group is None:
            raise InvalidRequest(f"There is no group named '{name}'.", param="group")
        return group

    # Serving -----------------------------------------------------------------------------

    async def _serve(
        self, call: CallRecord, principal: Principal, plan: _Plan, headers: Mapping[str, str]
    ) -> ChatReply:
        ticket = await self._billing.admit(
            call, principal, plan.model, plan.group, plan.body, plan.output
        )
        opened = await self._upstream.open(plan.candidates, headers)
        call.channel = opened.channel.name
        reply_headers = dict(ticket.limit.headers) if ticket.limit else {}
        if not call.stream:
            reply = await self._json(call, opened, plan)
            cost = await self._billing.close(call)
            reply.headers.update(reply_headers)
            reply.headers["x-reapi-cost"] = format_usd(cost)
            return reply
        translator = _stream_translator(plan, opened, ticket.prompt_chars)
        return StreamReply(self._stream(call, opened, translator), reply_headers)

    async def _json(self, call: CallRecord, opened: UpstreamCall, plan: _Plan) -> JsonReply:
        response = opened.response
        try:
            raw = await response.read()
        except TimeoutError:
            raise timed_out(opened.channel) from None
        except aiohttp.ClientError:
            raise UpstreamError(
                f"The upstream connection broke before the answer was complete. {RETRY_IS_SAFE}"
            ) from None
        finally:
            response.release()
        call.mark_first_byte()
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise UpstreamError(f"The upstream sent an invalid answer. {RETRY_IS_SAFE}")
        usage = answer.get("usage")
        if isinstance(usage, dict):
            call.usage = (
                Usage.from_openai(usage) if opened.fmt == "openai" else Usage.from_anthropic(usage)
            )
        # What billing estimates from if the upstream's usage is missing or unbelievable.
        call.output_chars = _ANSWER_CHARS[opened.fmt](answer)
        if opened.fmt == plan.client:
            scrub = opened.provider.scrub(opened.fmt)
            if (scrub is not None and scrub(answer)) or answer.get("model") != plan.requested:
                answer["model"] = plan.requested
                raw = orjson.dumps(answer)
        elif plan.echo is not None:
            raw = orjson.dumps(
                translate.response_to_responses(
                    opened.fmt,
                    answer,
                    plan.echo,
                    response_id=_response_id(),
                    created_at=int(time.time()),
                )
            )
        elif plan.client == "openai":
            raw = orjson.dumps(
                translate.anthropic_response_to_openai(
                    answer,
                    model=plan.requested,
                    completion_id="chatcmpl-" + secrets.token_hex(16),
                    created=int(time.time()),
                )
            )
        else:
            raw = orjson.dumps(
                translate.openai_response_to_anthropic(
                    answer, model=plan.requested, message_id="msg_" + secrets.token_hex(12)
                )
            )
        call.status = 200
        call.outcome = "ok"
        return JsonReply(raw)

    async def _stream(
        self, call: CallRecord, opened: UpstreamCall, translator: translate.StreamTranslator
    ) -> AsyncIterator[bytes]:
        """Relay (or translate) one stream. The HTTP layer closes it (aclose) when done."""
        response = opened.response
        decoder = SSEDecoder()
        call.status = 200
        try:
            async for piece in response.content.iter_any():
                if call.ttfb is None:
                    opened.streaming()
                call.mark_first_byte()
                out: list[bytes] = []
                for event in decoder.feed(piece):
                    out += translator.feed(event)
                if translator.finished:
                    out = await self._settle_stream(call, translator, out)
                elif translator.done:
                    # The upstream reported an error, or sent what no client could use.
                    await self._release_stream(call, translator)
                if out:
                    yield b"".join(out)
                if translator.done:
                    break
            if not translator.done:
                out = [part for event in decoder.close() for part in translator.feed(event)]
                out += translator.close()
                if translator.finished:
                    out = await self._settle_stream(call, translator, out)
                else:
                    await self._release_stream(call, translator)
                    out += translator.error(
                        _broken("The upstream ended the stream before finishing the answer.")
                    )
                if out:
                    yield b"".join(out)
        except (aiohttp.ClientError, TimeoutError) as exc:
            await self._release_stream(call, translator)
            yield b"".join(translator.error(_broken(opened.broke_off(exc, call.ttfb is not None))))
        except (asyncio.CancelledError, GeneratorExit):
            _note(call, translator)
            if call.outcome == "pending":
                call.outcome = "client_gone"
            raise
        except Exception:
            # A fault of the gateway's own after the first byte: the client still gets an error
            # event in its format, never a stream cut without one, and the call is free.
            log.exception("the gateway failed in the middle of a stream (%s)", call.request_id)
            _note(call, translator)
            call.outcome = "gateway_error"
            await self._billing.close(call)
            with contextlib.suppress(Exception):
                yield b"".join(translator.error(_GATEWAY_FAULT))
        finally:
            _note(call, translator)
            if call.outcome == "pending":
                call.outcome = "upstream_broke"
            if call.outcome == "ok":
                response.release()
            else:
                # Closing (not releasing) the connection is what stops the upstream generating.
                response.close()

    async def _release_stream(
        self, call: CallRecord, translator: translate.StreamTranslator
    ) -> None:
        """A broken stream is free; its hold is released before the client sees the error
        event, so whatever ended the client's stream, its books are final by then."""
        _note(call, translator)
        call.outcome = "upstream_broke"
        await self._billing.close(call)

    async def _settle_stream(
        self, call: CallRecord, translator: translate.StreamTranslator, out: list[bytes]
    ) -> list[bytes]:
        """Charge before the end marker leaves: a client that saw its answer end was charged.
        The cost goes out as an SSE comment just before that marker."""
        _note(call, translator)
        call.outcome = "ok"
        cost = await self._billing.close(call)
        comment = b": x-reapi-cost " + format_usd(cost).encode() + b"\n\n"
        end = next(
            (i for i in range(len(out) - 1, -1, -1) if out[i].startswith(_END_MARKERS)), len(out)
        )
        return [*out[:end], comment, *out[end:]]


def _note(call: CallRecord, translator: translate.StreamTranslator) -> None:
    call.output_chars = translator.output_chars
    if translator.usage is not None:
        call.usage = translator.usage


_GATEWAY_FAULT = (
    "The gateway failed in the middle of the answer. Failed calls are not charged; it is safe "
    "to retry."
)


def _response_id() -> str:
    return "resp_" + secrets.token_hex(24)


def _broken(message: str) -> str:
    return f"{message} {RETRY_IS_SAFE}"


def _stream_translator(
    plan: _Plan, opened: UpstreamCall, prompt_chars: int
) -> translate.StreamTranslator:
    if plan.client == opened.fmt:
        scrub = opened.provider.scrub(opened.fmt)
        if opened.fmt == "openai":
            return OpenAIRelay(model=plan.requested, include_usage=plan.include_usage, scrub=scrub)
        return AnthropicRelay(model=plan.requested, scrub=scrub)
    if plan.echo is not None:
        return translate.stream_to_responses(
            opened.fmt, plan.echo, response_id=_response_id(), created_at=int(time.time())
        )
    if plan.client == "openai":
        return translate.anthropic_stream_to_openai(
            model=plan.requested,
            include_usage=plan.include_usage,
            completion_id="chatcmpl-" + secrets.token_hex(16),
            created=int(time.time()),
        )
    return translate.openai_stream_to_anthropic(
        model=plan.requested,
        message_id="msg_" + secrets.token_hex(12),
        estimated_input_tokens=estimate.fair_tokens(prompt_chars),
    )


def _body_for(
    body: dict[str, Any], client: ClientFormat, fmt: WireFormat, channel: Channel, model: ChatModel
) -> Callable[[], bytes]:
    """The request as this channel needs it, built only if the channel is tried."""

    def build() -> bytes:
        upstream_model = channel.upstream_model(body["model"])
        request = body if upstream_model == body["model"] else {**body, "model": upstream_model}
        if client == "responses":
            request = translate.responses_request_to(
                fmt, request, adaptive_thinking=model.adaptive_thinking
            )
        elif client != fmt:
            if client == "openai":
                request = translate.openai_request_to_anthropic(
                    request, adaptive_thinking=model.adaptive_thinking
                )
            else:
                request = translate.anthropic_request_to_openai(request)
        if (
            fmt == "openai"
            and model.max_tokens_field == "max_completion_tokens"
            and "max_tokens" in request
        ):
            bound = request["max_tokens"]
            request = {k: v for k, v in request.items() if k != "max_tokens"}
            request.setdefault("max_completion_tokens", bound)
        return orjson.dumps(request)

    return build


def _output_bound(model: ChatModel, body: dict[str, Any], client: ClientFormat) -> OutputBound:
    """The call's one output bound, from every field of the body that caps output, written
    back into the body as the only such field: what is held is what the upstream is told."""
    cap, cap_field, choices = output.requested(body, allow_choices=client == "openai")
    if cap is None:
        if client == "anthropic":
            raise InvalidRequest("max_tokens: Field required", param="max_tokens")
        # A Responses call has no default of its own: OpenAI lets it run to the model's limit.
        cap = (
            model.max_output_tokens
            if client == "responses"
            else min(model.default_max_tokens, model.max_output_tokens)
        )
    if cap > model.max_output_tokens:
        raise InvalidRequest(
            f"'{cap_field}' must be between 1 and {model.max_output_tokens} for {model.name}, "
            f"got {cap}.",
            param=cap_field,
        )
    bound = OutputBound(cap, choices)
    output.apply(body, bound, _OUTPUT_FIELD[client], send_choices=client == "openai")
    return bound


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
