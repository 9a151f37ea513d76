"""A small declarative request schema that operators write in YAML, and the validator for it.

A schema is a map of field name to field spec; a spec is plain data (a type name alone, or a map
with ``type``, ``required``, ``default``, ``enum``, ``min``/``max``, ``min_length``/``max_length``,
``items``, ``min_items``/``max_items``, ``properties``). Parsing a spec checks the operator's
config once, at load; validating a request raises ``TaskError`` with the 2xxxx code and the
dotted path of the offending parameter. URL fields go through the SSRF guard's text check here;
the resolving check needs DNS and runs in the service (see ``iter_urls``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from reapi.protocols.tasks import TaskError, TaskErrorCode
from reapi.services.tasks.urls import STRICT, UrlPolicy, check_url_syntax

FIELD_TYPES = ("string", "integer", "number", "boolean", "url", "array", "object")
_SPEC_KEYS = frozenset(
    {
        "type",
        "required",
        "default",
        "enum",
        "min",
        "max",
        "min_length",
        "max_length",
        "items",
        "min_items",
        "max_items",
        "properties",
        "description",
    }
)


class CatalogError(ValueError):
    """The operator's model configuration is wrong; raised at load, never per request."""


@dataclass(frozen=True)
class FieldSpec:
    type: str
    required: bool = False
    default: Any = None
    enum: tuple[Any, ...] | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    min_length: int | None = None
    max_length: int | None = None
    items: FieldSpec | None = None
    min_items: int | None = None
    max_items: int | None = None
    properties: Mapping[str, FieldSpec] | None = None
    description: str = ""

    @classmethod
    def parse(cls, data: object, where: str) -> FieldSpec:
        if isinstance(data, str):
            data = {"type": data}
        if not isinstance(data, Mapping):
            raise CatalogError(f"{where}: a field spec is a type name or a map")
        unknown = set(data) - _SPEC_KEYS
        if unknown:
            raise CatalogError(f"{where}: unknown schema keys {sorted(unknown)}")
        type_ = data.get("type")
        if type_ not in FIELD_TYPES:
            raise CatalogError(f"{where}: type must be one of {', '.join(FIELD_TYPES)}")
        items = data.get("items")
        if (items is None) != (type_ != "array"):
            raise CatalogError(f"{where}: 'items' is required for arrays and only for them")
        props = data.get("properties")
        if props is not None and (type_ != "object" or not isinstance(props, Mapping)):
            raise CatalogError(f"{where}: 'properties' is a map, for objects only")
        enum = data.get("enum")
        if enum is not None and (not isinstance(enum, list) or not enum):
            raise CatalogError(f"{where}: enum must be a non-empty list")
        spec = cls(
            type=type_,
            required=_bool(data.get("required", False), f"{where}.required"),
            enum=tuple(enum) if enum is not None else None,
            min=_number(data.get("min"), f"{where}.min"),
            max=_number(data.get("max"), f"{where}.max"),
            min_length=_count(data.get("min_length"), f"{where}.min_length"),
            max_length=_count(data.get("max_length"), f"{where}.max_length"),
            items=cls.parse(items, f"{where}.items") if items is not None else None,
            min_items=_count(data.get("min_items"), f"{where}.min_items"),
            max_items=_count(data.get("max_items"), f"{where}.max_items"),
            properties=parse_schema(props, f"{where}.properties") if props is not None else None,
            description=str(data.get("description", "")),
        )
        default = data.get("default")
        if default is not None:
            try:
                default = spec.validate(default, "default", STRICT)
            except TaskError as exc:
                raise CatalogError(f"{where}: default {default!r} is invalid: {exc}") from None
            spec = replace(spec, default=default)
        if spec.enum is not None:
            for choice in spec.enum:
                try:
                    spec._check_type(choice, "enum", STRICT)
                except TaskError:
                    raise CatalogError(f"{where}: enum value {choice!r} is not a {type_}") from None
        return spec

    def validate(self, value: Any, path: str, policy: UrlPolicy) -> Any:
        value = self._check_type(value, path, policy)
        if self.enum is not None:
            value = self._choose(value, path)
        if self.type in ("integer", "number"):
            if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max
            ):
                raise TaskError(
                    TaskErrorCode.OUT_OF_RANGE,
                    f"{path} must be {_bounds(self.min, self.max)}",
                    param=path,
                )
        elif self.type == "string":
            if (self.min_length is not None and len(value) < self.min_length) or (
                self.max_length is not None and len(value) > self.max_length
            ):
                raise TaskError(
                    TaskErrorCode.BAD_LENGTH,
                    f"{path} must be {_bounds(self.min_length, self.max_length)} characters long",
                    param=path,
                )
        elif self.type == "array":
            value = self._validate_items(value, path, policy)
        elif self.type == "object" and self.properties is not None:
            value = validate_fields(self.properties, value, policy, prefix=f"{path}.")
        return value

    def _check_type(self, value: Any, path: str, policy: UrlPolicy) -> Any:
        ok: bool
        if self.type == "integer":
            # JSON has one number type; 5.0 is an integer written by a careless client.
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif self.type in ("string", "url"):
            ok = isinstance(value, str)
        elif self.type == "boolean":
            ok = isinstance(value, bool)
        elif self.type == "array":
            ok = isinstance(value, list)
        else:
            ok = isinstance(value, dict)
        if not ok:
            raise TaskError(
                TaskErrorCode.WRONG_TYPE, f"{path} must be {_article(self.type)}", param=path
            )
        if self.type == "url":
            check_url_syntax(value, policy, param=path)
            value = value.strip()
        return value

    def _choose(self, value: Any, path: str) -> Any:
        assert self.enum is not None
        if value in self.enum:
            return value
        # "1080P" for "1080p": the docs of upstreams disagree on case, clients copy either.
        if isinstance(value, str):
            folded = [
                c for c in self.enum if isinstance(c, str) and c.casefold() == value.casefold()
            ]
            if len(folded) == 1:
                return folded[0]
        choices = ", ".join(str(c) for c in self.enum)
        raise TaskError(
            TaskErrorCode.INVALID_CHOICE, f"{path} must be one of: {choices}", param=path
        )

    def _validate_items(self, value: list[Any], path: str, policy: UrlPolicy) -> list[Any]:
        if self.max_items is not None and len(value) > self.max_items:
            raise TaskError(
                TaskErrorCode.TOO_MANY_ITEMS,
                f"{path} accepts at most {self.max_items} items",
                param=path,
            )
        if self.min_items is not None and len(value) < self.min_items:
            raise TaskError(
                TaskErrorCode.TOO_FEW_ITEMS,
                f"{path} needs at least {self.min_items} items",
                param=path,
            )
        assert self.items is not None
        return [self.items.validate(item, f"{path}.{i}", policy) for i, item in enumerate(value)]


def parse_schema(data: object, where: str) -> dict[str, FieldSpec]:
    if not isinstance(data, Mapping):
        raise CatalogError(f"{where}: a schema is a map of field name to field spec")
    return {str(name): FieldSpec.parse(spec, f"{where}.{name}") for name, spec in data.items()}


def validate_fields(
    fields: Mapping[str, FieldSpec], body: Any, policy: UrlPolicy, *, prefix: str = ""
) -> dict[str, Any]:
    """Validated copy of ``body``: unknown keys rejected, nulls treated as absent, defaults
    filled in. Only declared fields come out, so nothing unchecked reaches an upstream."""
    if not isinstance(body, dict):
        where = prefix.rstrip(".") or None
        raise TaskError(
            TaskErrorCode.WRONG_TYPE, f"{where or 'body'} must be an object", param=where
        )
    for name in body:
        if name not in fields:
            raise TaskError(
                TaskErrorCode.UNKNOWN_PARAMETER,
                f"Unknown parameter {prefix}{name}",
                param=f"{prefix}{name}",
            )
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        value = body.get(name)
        if value is None:
            if spec.required:
                raise TaskError(
                    TaskErrorCode.MISSING_PARAMETER,
                    f"Missing required parameter {prefix}{name}",
                    param=f"{prefix}{name}",
                )
            if spec.default is not None:
                out[name] = spec.default
            continue
        out[name] = spec.validate(value, f"{prefix}{name}", policy)
    return out


def iter_urls(
    fields: Mapping[str, FieldSpec], params: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, str]]:
    """Every URL in validated params with its dotted path, for the resolving SSRF check."""
    for name, spec in fields.items():
        if name in params:
            yield from _urls_in(spec, params[name], f"{prefix}{name}")


def _urls_in(spec: FieldSpec, value: Any, path: str) -> Iterator[tuple[str, str]]:
    if spec.type == "url":
        yield path, value
    elif spec.type == "array" and spec.items is not None:
        for i, item in enumerate(value):
            yield from _urls_in(spec.items, item, f"{path}.{i}")
    elif spec.type == "object" and spec.properties is not None:
        yield from iter_urls(spec.properties, value, f"{path}.")


def _article(type_: str) -> str:
    names = {"integer": "an integer", "array": "an array", "object": "an object", "url": "a URL"}
    return names.get(type_, f"a {type_}")


def _bounds(low: object, high: object) -> str:
    if low is None:
        return f"at most {high}"
    if high is None:
        return f"at least {low}"
    return f"between {low} and {high}"


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise CatalogError(f"{where} must be true or false")
    return value


def _number(value: object, where: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CatalogError(f"{where} must be a number")
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise CatalogError(f"{where} must be a number") from None


def _count(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CatalogError(f"{where} must be a non-negative integer")
    return value
