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
    _spec = spec


@cache
def _validator(name: str) -> Draft202012Validator:
    assert _spec is not None, "call use_spec first (the openai_spec fixture)"
    registry: Registry[Any] = Registry().with_resource(
        _SPEC_URI, Resource.from_contents(_spec, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"{_SPEC_URI}#/components/schemas/{name}"}, registry=registry
    )


def assert_valid(name: str, instance: Any) -> None:
    errors = sorted(_validator(name).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{name} violations: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
    )
