"""Validate what the gateway emits against the official OpenAI OpenAPI schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_SPEC_URI = "urn:openai-openapi"
_spec: dict[str, Any] | None = None


def use_spec(spec: dict[str, Any]) -> None:
    global _spec
    if _spec is None:
        _spec = _nullable_to_json_schema(spec)


def _nullable_to_json_schema(node: Any) -> Any:
    """The spec still marks optional-null with OpenAPI 3.0's ``nullable: true``, which JSON
    Schema 2020-12 ignores; rewrite it to the equivalent ``null`` type so validation is exact."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable_to_json_schema(value) for key, value in node.items()}
    if out.pop("nullable", False) is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


def _closed(node: Any) -> Any:
    """Every object schema that lists its properties refuses any other: what an upstream adds
    to a format beyond the spec then fails validation too."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _closed(value) for key, value in node.items()}
    if isinstance(out.get("properties"), dict) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@cache
def _validator(name: str, strict: bool = False) -> Draft202012Validator:
    assert _spec is not None, "call use_spec first (the openai_spec fixture)"
    spec = _closed(_spec) if strict else _spec
    registry: Registry[Any] = Registry().with_resource(
        _SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"{_SPEC_URI}#/components/schemas/{name}"}, registry=registry
    )


def assert_valid(name: str, instance: Any, *, strict: bool = False) -> None:
    """``strict``: no field beyond those the schema lists, at any depth."""
    errors = sorted(_validator(name, strict).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{name} violations: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
    )


@cache
def _event_schemas(union: str) -> dict[str, str]:
    assert _spec is not None, "call use_spec first (the openai_spec fixture)"
    schemas = _spec["components"]["schemas"]
    names: dict[str, str] = {}
    for ref in schemas[union]["anyOf" if "anyOf" in schemas[union] else "oneOf"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        kind = schemas[name].get("properties", {}).get("type", {}).get("enum", [None])[0]
        if kind is not None:
            names[kind] = name
    return names


def assert_valid_event(instance: dict[str, Any], union: str = "ResponseStreamEvent") -> None:
    """Validate one stream event against the schema its ``type`` names (so a failure says
    which field is wrong, not only that no member of the union matched)."""
    name = _event_schemas(union).get(instance.get("type"))  # type: ignore[arg-type]
    assert name is not None, f"{instance.get('type')!r} is not an event of {union}"
    assert_valid(name, instance)
