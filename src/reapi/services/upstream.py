"""One upstream HTTP exchange: open it (exactly once per call), classify its errors.

The only place the chat path touches aiohttp. ``open`` walks the router's candidates but moves
to the next one only when the connection itself could not be made, i.e. when not a byte of the
request can have reached the upstream; any later failure ends the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

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


class UpstreamClient:
    def __init__(self, session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout) -> None:
        self._session = session
        self._timeout = timeout

    async def open(
        self,
        candidates: list[Candidate],
        client_headers: Mapping[str, str],
    ) -> UpstreamCall:
        """POST to the first reachable candidate; raise ``UpstreamError`` for non-2xx answers."""
        last_error: Exception | None = None
        for channel, provider, fmt, build in candidates:
            url = provider.url(channel, fmt)
            headers = provider.headers(channel, fmt, client_headers)
            body = build()
            try:
                response = await self._session.post(
                    url, data=body, headers=headers, timeout=self._timeout
                )
            except aiohttp.ClientConnectorError as exc:
                # Nothing was sent: trying the next channel cannot duplicate the call.
                log.warning("channel %s unreachable: %s", channel.name, exc.os_error)
                last_error = exc
                continue
            except TimeoutError:
                raise UpstreamError(
                    f"The upstream did not answer in time. {RETRY_IS_SAFE}", code="upstream_timeout"
                ) from None
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
                url, data=body, headers=headers, timeout=self._timeout
            ) as response:
                if response.status >= 300:
                    raise await upstream_failure(response, channel)
                answer = await response.json(loads=orjson.loads, content_type=None)
        except (aiohttp.ClientError, TimeoutError):
            raise UpstreamError(f"The upstream could not be reached. {RETRY_IS_SAFE}") from None
        if not isinstance(answer, dict):
            raise UpstreamError(f"The upstream sent an invalid answer. {RETRY_IS_SAFE}")
        return answer


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
            f"The upstream provider refused the gateway's credentials for this model. "
            f"{RETRY_IS_SAFE}",
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
