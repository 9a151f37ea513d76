"""The one error pure protocol code raises: the client's request does not fit the wire format."""

from __future__ import annotations


class InvalidRequest(ValueError):
    """A 400 in the client's own envelope. ``param`` names the offending field (dotted path)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
