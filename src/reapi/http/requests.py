"""Reading what a client sent: the body (bounded) and the API key (either header style)."""

from __future__ import annotations

from starlette.requests import Request

from reapi.errors import AuthenticationFailed, RequestTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        parts.append(part)
    return b"".join(parts)


def api_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer`` (OpenAI SDKs, current Anthropic SDKs) or
    ``x-api-key`` (older Anthropic SDKs). A malformed Authorization header is an error, not a
    silent fall-through to ``x-api-key``."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed(
                "The Authorization header must be 'Bearer YOUR_API_KEY'.", code="invalid_api_key"
            )
        return token.strip()
    return request.headers.get("x-api-key") or None
