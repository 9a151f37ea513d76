"""Query and path parameters as typed values: the one strict parser every route uses.

Query strings arrive as text, and the obvious checks are wrong in ways a fuzzer finds at once:
``str.isdigit`` accepts '²', which ``int`` then refuses; ``datetime.fromisoformat`` accepts
offsets whose conversion to UTC overflows; a NUL is fine in SQLite and an error in PostgreSQL.
Each helper returns a value the services can use as is, or raises ``ParamError``, which every
surface renders in its own envelope (the task gateway maps ``kind`` to its numeric codes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

from reapi.protocols.errors import InvalidRequest

ParamKind = Literal["type", "range", "choice"]

_DIGITS = re.compile(r"[0-9]{1,18}")
# RFC 3339 (what OpenAPI's date and date-time formats mean), matched before Python reads it:
# fromisoformat also takes week dates and basic formats. A date-time without an offset is read
# as UTC, as the gateway has always read it and as every time it shows is written.
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}):([0-9]{2})(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
# Printable text without controls: names, ids and filters end up in SQL parameters.
_TEXT = re.compile(r"[^\x00-\x1f\x7f]*")


class ParamError(InvalidRequest):
    """A parameter that is not of its type (``type``), outside its range (``range``) or not one
    of its allowed values (``choice``)."""

    def __init__(self, message: str, param: str, kind: ParamKind) -> None:
        super().__init__(message, param)
        self.kind = kind


def integer(params: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    """``name`` as an integer in ``low..high`` (ASCII digits only), ``default`` when absent."""
    text = params.get(name)
    if text is None:
        return default
    message = f"{name} must be an integer from {low} to {high}"
    if not _DIGITS.fullmatch(text):
        raise ParamError(message, name, "type")
    value = int(text)
    if not low <= value <= high:
        raise ParamError(message, name, "range")
    return value


def timestamp(params: Mapping[str, str], name: str) -> datetime | None:
    """``name`` as an aware UTC datetime (an RFC 3339 date, meaning its midnight UTC, or
    date-time, UTC when it has no offset), ``None`` when absent or empty."""
    text = params.get(name)
    return parse_timestamp(text, name) if text else None


def parse_timestamp(text: str, name: str) -> datetime:
    message = f"{name} must be an RFC 3339 date or date-time, e.g. 2026-01-31T12:00:00Z"
    try:
        if _DATE.fullmatch(text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        found = _DATE_TIME.fullmatch(text.upper())
        if found is None:
            raise ValueError(text)
        minutes, seconds, fraction, offset = found.groups()
        # A leap second (:60) is valid RFC 3339 that datetime cannot hold: its last microsecond.
        if seconds == "60":
            seconds, fraction = "59", ".999999"
        value = datetime.fromisoformat(f"{minutes}:{seconds}{fraction or ''}{offset or 'Z'}")
    except ValueError:
        raise ParamError(message, name, "type") from None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # Its offset moves it outside years 1..9999: as far as any comparison can tell, the edge.
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


def text(params: Mapping[str, str], name: str, *, max_length: int = 128) -> str | None:
    """``name`` as printable text of at most ``max_length`` characters; ``None`` when absent
    or empty (an empty filter is no filter)."""
    value = params.get(name)
    if not value:
        return None
    return check_text(value, name, max_length=max_length)


def check_text(value: str, name: str, *, max_length: int = 128) -> str:
    if len(value) > max_length or not _TEXT.fullmatch(value):
        raise ParamError(f"{name} must be at most {max_length} printable characters", name, "type")
    return value


def choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    """``name`` as one of ``allowed``; ``None`` when absent or empty."""
    value = params.get(name)
    if not value:
        return None
    if value not in allowed:
        raise ParamError(f"{name} must be one of: {', '.join(allowed)}", name, "choice")
    return value
