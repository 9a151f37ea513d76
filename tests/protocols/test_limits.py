"""The edge limits on every chat body: the nesting check agrees with a plain walk of the value,
exactly at the documented limit, and whatever it passes can be encoded again."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reapi.protocols.errors import InvalidRequest
from reapi.protocols.limits import MAX_DEPTH, parse_json_object


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def chain(kinds: list[bool], leaf: Any) -> Any:
    """Nest ``leaf`` once per entry of ``kinds``: True makes an object level, False an array."""
    value = leaf
    for is_object in kinds:
        value = {"k": value} if is_object else [value]
    return value


@pytest.mark.parametrize("padding", [0, 20_000], ids=["small", "large"])
@pytest.mark.parametrize("is_object", [True, False])
def test_the_limit_is_exact(is_object: bool, padding: int) -> None:
    # Small and large bodies take different paths through the check.
    at_limit = {"x": chain([is_object] * (MAX_DEPTH - 1), 1), "pad": "[" * padding}
    assert depth(at_limit) == MAX_DEPTH
    assert parse_json_object(orjson.dumps(at_limit)) == at_limit
    past = {"x": chain([is_object] * MAX_DEPTH, 1), "pad": "[" * padding}
    with pytest.raises(InvalidRequest, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_json_object(orjson.dumps(past))


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=3)
shallow = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=8,
)


@given(
    kinds=st.lists(st.booleans(), min_size=MAX_DEPTH - 12, max_size=MAX_DEPTH + 40),
    siblings=st.lists(shallow, max_size=3),
)
def test_bodies_are_refused_exactly_when_nested_past_the_limit(
    kinds: list[bool], siblings: list[Any]
) -> None:
    body = {"deep": chain(kinds, siblings), "other": siblings}
    raw = json.dumps(body).encode()  # orjson itself cannot write the deepest of these
    if depth(body) <= MAX_DEPTH:
        parsed = parse_json_object(raw)
        assert orjson.loads(orjson.dumps(parsed)) == body
    else:
        with pytest.raises(InvalidRequest):
            parse_json_object(raw)


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"x"', b"null", b"{", b'{"a": NaN}', b"\xff"])
def test_only_a_json_object_is_a_body(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_json_object(raw)
