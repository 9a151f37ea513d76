"""What every chat body must respect, whatever its wire format: it is one JSON object, nested at
most ``MAX_DEPTH`` levels, and names a model of at most ``MAX_MODEL_NAME`` characters.

Checked at the edge, before anything reads the body: a body the gateway could not re-encode or
record must never get further than a 400.
"""

from __future__ import annotations

from typing import Any

import orjson

from reapi.protocols.errors import InvalidRequest

# orjson refuses to encode more than 254 levels (and decodes up to 1,024), so a body nested past
# that would parse and then fail to be sent on. 128 covers any real tool schema (OpenAI's own
# structured outputs stop at 10 levels) and leaves translation room to add a level or two.
MAX_DEPTH = 128
_ORJSON_MAX_DEPTH = 254
_COUNT_BELOW = 16_384
_NOT_OPENING = bytes(byte for byte in range(256) if byte not in b"[{")
# The widest column a model name is recorded in (usage records, the ledger) holds 128.
MAX_MODEL_NAME = 128


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    # Every level opens with "[" or "{", so a body with at most MAX_DEPTH of them cannot be too
    # deep (those inside strings only make the count larger). Counting costs well under a
    # microsecond on the small bodies most calls send, where the exact check costs ~15 us; on
    # large ones the count is always over and costs as much as the check, so it is skipped.
    if len(raw) < _COUNT_BELOW and len(raw.translate(None, _NOT_OPENING)) <= MAX_DEPTH:
        return body
    check_depth(body)
    return body


def check_depth(value: Any) -> None:
    """Refuse ``value`` if it is nested deeper than ``MAX_DEPTH``.

    Walking the value in Python costs twice the parse; encoding it with orjson costs a third,
    so the check is an encode: under ``254 - MAX_DEPTH`` extra levels, orjson's own limit
    trips exactly when ``value`` is deeper than ``MAX_DEPTH``. It also proves the body can be
    encoded again, which is what the limit protects.
    """
    for _ in range(_ORJSON_MAX_DEPTH - MAX_DEPTH):
        value = [value]
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        message = f"The request body is nested deeper than {MAX_DEPTH} levels."
        raise InvalidRequest(message) from None
