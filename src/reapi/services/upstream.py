"""One upstream HTTP exchange: open it (exactly once per call), classify its errors.

The only place the chat path touches aiohttp. ``open`` walks the router's candidates but moves
to the next one only when the connection itself could not be made (refused, unreachable, or not
made within the channel's ``connect`` limit), i.e. when not a byte of the request can have
reached the upstream; any later failure ends the call.

Each channel's ``timeouts`` bound a call: ``connect``; ``first_byte``, from sending the request
to the first byte of the answer's body (headers alone do not count: some upstreams send them at
once and then think for minutes); and ``between_chunks``, the longest silence after that, which
``UpstreamCall.streaming`` switches a stream to. aiohttp enforces the last two as its per-read
socket timeout, a timer it re-arms on every read anyway, so they cost nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from yarl import URL

from reapi.config import Channel
from reapi.errors import RETRY_IS_SAFE, GatewayError, UpstreamError
from reapi.providers.base import Provider, WireFormat

log = logging.getLogger("reapi.upstream")

_RELAYED_CLIENT_ERRORS = frozenset({400, 404, 409, 413, 415, 422})
_MAX_ERROR_BODY = 64 * 1024


# (channel, its adapter, the wire format to speak to it, the request body in that format; built
# only when the channel is actually tried)
Candidate = tuple[Channel, Provider, WireFormat, Callable[[], bytes]]


@dataclass(slots=True)
class UpstreamCall:
    channel: Channel
    provider: Provider
    fmt: WireFormat
    response: aiohttp.ClientResponse

    def streaming(self) -> None:
        """Call at the first byte of a stream: from now on the longest silence allowed is the
        channel's ``between_chunks``, counted from now."""
        connection = self.response.connection
        protocol = connection.protocol if connection is not None else None
        if protocol is not None:
            protocol.read_timeout = self.channel.timeouts.between_chunks
            protocol.start_timeout()

    def broke_off(self, exc: BaseException, started: bool) -> str:
        """Why a stream that ``started`` (or not) ended with ``exc``, for its error event."""
        if not isinstance(exc, TimeoutError):
            return "The upstream connection broke in the middle of the answer."
        if started:
            return (
                f"The upstream sent nothing for {self.channel.timeouts.between_chunks:g} s in "
                "the middle of the answer."
            )
        return (
            f"The upstream did not start its answer within {self.channel.timeouts.first_byte:g} s."
        )


class UpstreamClient:
    def __init__(self, session: aiohttp.ClientSession, total_timeout: float | None = None) -> None:
        self._session = session
        self._total = total_timeout
        # Parsed once per channel and format: aiohttp would otherwise parse the string each call.
        self._urls: dict[tuple[str, str], URL] = {}
        self._timeouts: dict[str, aiohttp.ClientTimeout] = {}

    def _timeout(self, channel: Channel) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(channel.name)
        if timeout is None:
            limits = channel.timeouts
            # sock_connect, not connect: aiohttp arms the latter's timer on every call, even one
            # served by a pooled connection, and the former only when a connection is made.
            timeout = self._timeouts[channel.name] = aiohttp.ClientTimeout(
                total=self._total,
                sock_connect=limits.connect,
                sock_read=limits.first_byte,
            )
        return timeout

    async def open(
        self,
        candidates: list[Candidate],
        client_headers: Mapping[str, str],
    ) -> UpstreamCall:
        """POST to the first reachable candidate; raise ``UpstreamError`` for non-2xx answers."""
        last_error: Exception | None = None
        for channel, provider, fmt, build in candidates:
            url = self._urls.get((channel.name, fmt))
            if url is None:
                url = self._urls[(channel.name, fmt)] = URL(provider.url(channel, fmt))
            headers = provider.headers(channel, fmt, client_headers)
            body = build()
            try:
                response = await self._session.post(
                    url, data=body, headers=headers, timeout=self._timeout(channel)
                )
            except aiohttp.ClientConnectorError as exc:
                # Nothing was sent: trying the next channel cannot duplicate the call.
                log.warning("channel %s unreachable: %s", channel.name, exc.os_error)
                last_error = exc
                continue
            except aiohttp.ConnectionTimeoutError as exc:
                # Nothing was sent either: the connection was never made.
                log.warning(
                    "channel %s: no connection within %g s", channel.name, channel.timeouts.connect
                )
                last_error = exc
                continue
            except TimeoutError:
                raise timed_out(channel) from None
            except aiohttp.ClientError as exc:
                raise UpstreamError(
                    f"The connection to the upstream failed ({type(exc).__name__}). {RETRY_IS_SAFE}"
                ) from None
            if response.status >= 300:
                try:
                    raise await upstream_failure(response, channel)
                finally:
                    response.release()
            return UpstreamCall(channel, provider, fmt, response)
        if isinstance(last_error, aiohttp.ConnectionTimeoutError):
            raise UpstreamError(
                f"No upstream for this model could be connected to in time. {RETRY_IS_SAFE}",
                status=504,
                code="upstream_timeout",
            ) from last_error
        raise UpstreamError(
            f"No upstream for this model could be reached. {RETRY_IS_SAFE}",
            code="upstream_unreachable",
        ) from last_error

    async def post_json(
        self, url: str, headers: dict[str, str], body: bytes, channel: Channel
    ) -> dict[str, Any]:
        """A small side call (e.g. count_tokens): one POST, JSON back, errors mapped."""
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=self._timeout(channel)
            ) as response:
                if response.status >= 300:
                    raise await upstream_failure(response, channel)
                answer = await response.json(loads=orjson.loads, content_type=None)
        except TimeoutError:
            raise timed_out(channel) from None
        except aiohttp.ClientError:
            raise UpstreamError(f"The upstream could not be reached. {RETRY_IS_SAFE}") from None
        if not isinstance(answer, dict):
            raise UpstreamError(f"The upstream sent an invalid answer. {RETRY_IS_SAFE}")
        return answer


def timed_out(channel: Channel) -> UpstreamError:
    """A call whose upstream did not start its answer within the channel's ``first_byte``."""
    return UpstreamError(
        f"The upstream did not answer within {channel.timeouts.first_byte:g} s. {RETRY_IS_SAFE}",
        status=504,
        code="upstream_timeout",
    )


async def upstream_failure(response: aiohttp.ClientResponse, channel: Channel) -> GatewayError:
    """Turn an upstream error answer into the gateway error the client will see."""
    status = response.status
    try:
        raw = await response.content.read(_MAX_ERROR_BODY)
    except (aiohttp.ClientError, TimeoutError):
        raw = b""
    message = _error_message(raw)
    log.warning("channel %s answered %s: %s", channel.name, status, message[:300])
    if status in _RELAYED_CLIENT_ERRORS:
        return UpstreamError(f"The upstream rejected the request: {message}", status=status)
    if status == 429:
        error = UpstreamError(
            f"The upstream provider is rate limiting this model; retry later. {RETRY_IS_SAFE}",
            status=429,
            code="upstream_rate_limited",
        )
        if retry_after := response.headers.get("retry-after"):
            error.headers["retry-after"] = retry_after
        return error
    if status in (401, 403):
        # The channel's own credentials failed; the client's key is fine, so no 401 for them.
        return UpstreamError(
            "The upstream provider refused the gateway's credentials for this model: the "
            "operator must fix the channel's key. Failed calls are not charged.",
            code="upstream_auth_failed",
        )
    if status == 529:
        return UpstreamError(
            f"The upstream provider is overloaded. {RETRY_IS_SAFE}", status=529, code="overloaded"
        )
    return UpstreamError(
        f"The upstream provider failed (HTTP {status}). {RETRY_IS_SAFE}", code="upstream_error"
    )


def _error_message(raw: bytes) -> str:
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace").strip()[:500] or "no details"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:2000]
    if isinstance(error, str):
        return error[:2000]
    return raw.decode("utf-8", "replace")[:500]
