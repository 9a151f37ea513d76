"""The one error tree of the gateway.

Services raise these; only the HTTP layer renders them, in the envelope of the surface the
client called (OpenAI or Anthropic). Each class knows its status, its stable OpenAI ``type`` and
``code`` and its Anthropic error type, so expected business outcomes never turn into 500s.
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    openai_type = "api_error"
    anthropic_type = "api_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}


class InvalidRequest(GatewayError):
    status = 400
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    code = "invalid_request"


class AuthenticationFailed(GatewayError):
    status = 401
    openai_type = "invalid_request_error"
    anthropic_type = "authentication_error"
    code = "invalid_api_key"


class InsufficientBalance(GatewayError):
    status = 402
    openai_type = "insufficient_quota"
    anthropic_type = "billing_error"
    code = "insufficient_quota"


class PermissionDenied(GatewayError):
    status = 403
    openai_type = "invalid_request_error"
    anthropic_type = "permission_error"
    code = "permission_denied"


class ModelNotFound(GatewayError):
    status = 404
    openai_type = "invalid_request_error"
    anthropic_type = "not_found_error"
    code = "model_not_found"


class NotFound(GatewayError):
    status = 404
    openai_type = "invalid_request_error"
    anthropic_type = "not_found_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTooLarge(GatewayError):
    status = 413
    openai_type = "invalid_request_error"
    anthropic_type = "request_too_large"
    code = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    openai_type = "rate_limit_exceeded"
    anthropic_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    """The upstream answered with an error, or could not be reached.

    ``status`` is set per instance: upstream 4xx statuses that describe the client's request are
    relayed as they are; everything else becomes a 502 that says a retry is safe.
    """

    status = 502
    openai_type = "api_error"
    anthropic_type = "api_error"
    code = "upstream_error"

    def __init__(self, message: str, *, status: int = 502, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        if status == 429:
            self.openai_type = "rate_limit_exceeded"
            self.anthropic_type = "rate_limit_error"
        elif status == 529:
            self.anthropic_type = "overloaded_error"
        elif status == 504:
            self.anthropic_type = "timeout_error"
        elif 400 <= status < 500:
            self.openai_type = "invalid_request_error"
            self.anthropic_type = "invalid_request_error"


class GatewayUnavailable(GatewayError):
    status = 503
    openai_type = "api_error"
    anthropic_type = "overloaded_error"
    code = "service_unavailable"


RETRY_IS_SAFE = "Failed calls are not charged; it is safe to retry."
