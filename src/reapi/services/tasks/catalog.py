"""The task model catalog: what each task model accepts, which upstream family serves it, how
long it may run and what it costs.

``load_task_models`` merges the operator's ``models:`` entries over the built-ins once at
startup (bad config raises ``CatalogError`` there, not per request). Per request the service
calls ``resolve_model``, ``validate_task_request`` and ``check_request_urls``, then ``price``
to get the exact integer units to debit before dispatch. Nothing here does I/O except the
optional DNS look-ups of ``check_request_urls``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from reapi.money import MoneyFormatError, credits_to_units, parse_decimal
from reapi.protocols.tasks import MEDIA_KINDS, SUBMIT_PATHS, MediaKind, TaskError, TaskErrorCode
from reapi.providers.tasks.base import ANY_CHANNEL, WireMapping, value_key
from reapi.providers.tasks.registry import TASK_ADAPTERS
from reapi.services.tasks.defaults import BUILTIN_TASK_MODELS
from reapi.services.tasks.schema import (
    CatalogError,
    FieldSpec,
    iter_urls,
    parse_schema,
    validate_fields,
)
from reapi.services.tasks.urls import STRICT, Resolver, UrlPolicy, check_url

# unit -> the params field that counts outputs (or, per character, the text that is counted),
# when the unit multiplies by one.
BILLING_UNITS: Mapping[str, str | None] = {
    "generation": None,
    "image": "n",
    "song": "number_of_songs",
    "second": None,
    "source_minute": None,
    "stem_minute": "stem_list",
    "thousand_characters": "text",
}
SOURCE_UNITS = frozenset({"source_minute", "stem_minute"})
_MODEL_KEYS = frozenset(
    {
        "kind",
        "channel_type",
        "timeout_seconds",
        "max_source_seconds",
        "description",
        "enabled",
        "schema",
        "billing",
        "modes",
        "exclusive",
        "upstream",
        "unknown",
    }
)
_BILLING_KEYS = frozenset(
    {"unit", "credits", "tier_field", "count_field", "duration_field", "seconds"}
)


@dataclass(frozen=True)
class Billing:
    unit: str
    # A flat rate, or rates keyed by the value of ``tier_field`` (e.g. resolution); None when
    # only the unit is public and the operator has not set the rate yet.
    credits: Decimal | Mapping[str, Decimal] | None
    tier_field: str | None = None
    count_field: str | None = None
    duration_field: str | None = None
    seconds: int | None = None


@dataclass(frozen=True)
class Mode:
    """A generation mode chosen by which media fields are present (first match wins)."""

    name: str
    when_any: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskModel:
    name: str
    kind: MediaKind
    schema: Mapping[str, FieldSpec]
    # None when not even the billing unit is public: the operator sets it before serving.
    billing: Billing | None
    # The adapter family whose wire fields the schema is written for; None lets any channel
    # that lists the model serve it.
    channel_type: str | None = None
    timeout_seconds: int = 900
    max_source_seconds: int | None = None
    modes: tuple[Mode, ...] = ()
    exclusive: tuple[tuple[str, ...], ...] = ()
    description: str = ""
    # Channel type (or ``*``) -> how that upstream spells the parameters (see WireMapping).
    upstream: Mapping[str, WireMapping] = field(default_factory=dict)
    # Catalog facts nobody has set, by config key ("billing", "billing.credits", ...): the
    # public docs do not state them and the operator has not either. Pages say so.
    unknown: tuple[str, ...] = ()

    @property
    def needs_source_duration(self) -> bool:
        return self.billing is not None and self.billing.unit in SOURCE_UNITS

    @property
    def priced(self) -> bool:
        return self.billing is not None and self.billing.credits is not None

    @property
    def billing_unit(self) -> str | None:
        return self.billing.unit if self.billing is not None else None

    def missing_price(self) -> str:
        """What the operator must set before a channel may serve this model."""
        if self.billing is None:
            units = ", ".join(BILLING_UNITS)
            return f"set models.{self.name}.billing (unit: one of {units}; credits)"
        tiers = f", keyed by {self.billing.tier_field}" if self.billing.tier_field else ""
        return f"set models.{self.name}.billing.credits (per {self.billing.unit}{tiers})"


def load_task_models(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, TaskModel]:
    """Built-ins with the operator's entries merged over them deeply. Entries without ``kind``
    are chat models and are skipped; ``enabled: false`` removes a model; a ``null`` value
    deletes the key it names (e.g. a schema field); a billing with a different ``unit``
    replaces the built-in billing whole instead of merging into it."""
    raw: dict[str, dict[str, Any]] = copy.deepcopy(BUILTIN_TASK_MODELS)
    for name, entry in overrides.items():
        if not isinstance(entry, Mapping):
            raise CatalogError(f"models.{name}: must be a map")
        if "kind" not in entry:
            continue
        base = raw.get(name, {})
        billing = entry.get("billing")
        if isinstance(billing, Mapping) and billing.get("unit") not in (
            None,
            base.get("billing", {}).get("unit"),
        ):
            base = {k: v for k, v in base.items() if k != "billing"}
        raw[name] = _merge(base, entry)
    models: dict[str, TaskModel] = {}
    for name, data in raw.items():
        if data.get("enabled", True) is False:
            continue
        models[name] = parse_task_model(name, data)
    return models


def _is_set(data: Mapping[str, Any], path: str) -> bool:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or node.get(part) is None:
            return False
        node = node[part]
    return True


def _unknown(data: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The declared unknown facts the entry still leaves unset, and the billing gaps."""
    declared = data.get("unknown", [])
    if not isinstance(declared, list) or not all(isinstance(k, str) for k in declared):
        raise CatalogError(f"{where}.unknown must be a list of config keys")
    gaps = [k for k in declared if not _is_set(data, k)]
    if not _is_set(data, "billing"):
        gaps.insert(0, "billing")
    elif not _is_set(data, "billing.credits"):
        gaps.insert(0, "billing.credits")
    return tuple(dict.fromkeys(gaps))


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(copy.deepcopy(base))
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_task_model(name: str, data: Mapping[str, Any]) -> TaskModel:
    where = f"models.{name}"
    unknown = set(data) - _MODEL_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown keys {sorted(unknown)}")
    kind = data.get("kind")
    if kind not in MEDIA_KINDS:
        raise CatalogError(f"{where}.kind must be one of {', '.join(MEDIA_KINDS)}")
    schema = parse_schema(data.get("schema", {}), f"{where}.schema")
    model = TaskModel(
        name=name,
        kind=cast(MediaKind, kind),
        schema=schema,
        billing=_parse_billing(data["billing"], f"{where}.billing")
        if data.get("billing") is not None
        else None,
        channel_type=_opt_str(data.get("channel_type"), f"{where}.channel_type"),
        timeout_seconds=_positive(data.get("timeout_seconds", 900), f"{where}.timeout_seconds"),
        max_source_seconds=(
            _positive(data["max_source_seconds"], f"{where}.max_source_seconds")
            if data.get("max_source_seconds") is not None
            else None
        ),
        modes=_parse_modes(data.get("modes", []), f"{where}.modes"),
        exclusive=_parse_groups(data.get("exclusive", []), f"{where}.exclusive"),
        description=str(data.get("description", "")),
        upstream=_parse_upstream(data.get("upstream", {}), schema, f"{where}.upstream"),
        unknown=_unknown(data, where),
    )
    _check_consistency(model, where)
    return model


def _parse_upstream(
    data: object, schema: Mapping[str, FieldSpec], where: str
) -> dict[str, WireMapping]:
    if not isinstance(data, Mapping):
        raise CatalogError(f"{where} must map a channel type (or *) to its fields and values")
    out: dict[str, WireMapping] = {}
    for channel_type, entry in data.items():
        at = f"{where}.{channel_type}"
        if channel_type != ANY_CHANNEL and channel_type not in TASK_ADAPTERS:
            raise CatalogError(f"{at}: no task channel type {channel_type!r}")
        if not isinstance(entry, Mapping) or set(entry) - {"fields", "values"}:
            raise CatalogError(f"{at}: a mapping has 'fields' and 'values' only")
        fields = entry.get("fields", {})
        values = entry.get("values", {})
        if not isinstance(fields, Mapping) or not all(isinstance(v, str) for v in fields.values()):
            raise CatalogError(f"{at}.fields maps our field name to the upstream's")
        if not isinstance(values, Mapping) or not all(
            isinstance(v, Mapping) for v in values.values()
        ):
            raise CatalogError(f"{at}.values maps a field name to a map of value spellings")
        for name in (*fields, *values):
            if name not in schema:
                raise CatalogError(f"{at}: {name!r} is not a field of the schema")
        out[str(channel_type)] = WireMapping(
            fields={str(k): v for k, v in fields.items()},
            values={str(k): {value_key(v): w for v, w in m.items()} for k, m in values.items()},
        )
    return out


def _parse_billing(data: object, where: str) -> Billing:
    if not isinstance(data, Mapping):
        raise CatalogError(f"{where}: billing is a map (unit, credits)")
    unknown = set(data) - _BILLING_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown keys {sorted(unknown)}")
    unit = data.get("unit")
    if not isinstance(unit, str) or unit not in BILLING_UNITS:
        raise CatalogError(f"{where}.unit must be one of {', '.join(BILLING_UNITS)}")
    raw = data.get("credits")
    credits: Decimal | dict[str, Decimal] | None
    if raw is None:
        credits = None
    elif isinstance(raw, Mapping):
        if not raw:
            raise CatalogError(f"{where}.credits: a tier map needs at least one entry")
        credits = {str(k): _credits(v, f"{where}.credits.{k}") for k, v in raw.items()}
    else:
        credits = _credits(raw, f"{where}.credits")
    tier_field = data.get("tier_field")
    if isinstance(credits, dict) and tier_field is None:
        tier_field = "resolution"
    seconds = data.get("seconds")
    return Billing(
        unit=unit,
        credits=credits,
        # A flat rate ignores tiers; an unset rate keeps the tier field, to say what it will
        # be keyed by.
        tier_field=_opt_str(tier_field, f"{where}.tier_field")
        if credits is None or isinstance(credits, dict)
        else None,
        count_field=_opt_str(data.get("count_field", BILLING_UNITS[unit]), f"{where}.count_field"),
        duration_field=_opt_str(
            data.get(
                "duration_field", "duration" if unit == "second" and seconds is None else None
            ),
            f"{where}.duration_field",
        ),
        seconds=_positive(seconds, f"{where}.seconds") if seconds is not None else None,
    )


def _credits(value: object, where: str) -> Decimal:
    if (
        isinstance(value, float)
        or not isinstance(value, str | int | Decimal)
        or isinstance(value, bool)
    ):
        raise CatalogError(f'{where}: credits are a decimal string such as "12.5"')
    try:
        amount = parse_decimal(value, what=where)
        credits_to_units(amount)
    except MoneyFormatError as exc:
        raise CatalogError(str(exc)) from None
    if amount < 0:
        raise CatalogError(f"{where}: credits cannot be negative")
    return amount


def _parse_modes(data: object, where: str) -> tuple[Mode, ...]:
    if not isinstance(data, list):
        raise CatalogError(f"{where} must be a list")
    modes = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise CatalogError(f"{where}.{i}: a mode is a map with a name")
        modes.append(
            Mode(
                name=item["name"],
                when_any=_names(item.get("when_any", []), f"{where}.{i}.when_any"),
                requires=_names(item.get("requires", []), f"{where}.{i}.requires"),
            )
        )
    return tuple(modes)


def _parse_groups(data: object, where: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(data, list):
        raise CatalogError(f"{where} must be a list of field-name lists")
    return tuple(_names(group, f"{where}.{i}") for i, group in enumerate(data))


def _names(data: object, where: str) -> tuple[str, ...]:
    if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
        raise CatalogError(f"{where} must be a list of field names")
    return tuple(data)


def _check_consistency(model: TaskModel, where: str) -> None:
    """Catch, at load, the mistakes that would otherwise surface as a pricing crash."""
    fields = model.schema
    referenced = [n for m in model.modes for n in (*m.when_any, *m.requires)]
    referenced += [n for group in model.exclusive for n in group]
    for name in referenced:
        if name not in fields:
            raise CatalogError(f"{where}: modes/exclusive name unknown field {name!r}")
    b = model.billing
    if b is None:
        return
    if b.tier_field is not None:
        spec = fields.get(b.tier_field)
        if spec is None:
            raise CatalogError(f"{where}.billing.tier_field {b.tier_field!r} is not in the schema")
        if spec.enum is None:
            raise CatalogError(f"{where}.billing: tier field {b.tier_field!r} needs an enum")
        if spec.default is None and not spec.required:
            raise CatalogError(f"{where}.billing: tier field {b.tier_field!r} needs a default")
        for choice in spec.enum or ():
            if isinstance(b.credits, Mapping) and _tier_rate(b.credits, choice) is None:
                raise CatalogError(f"{where}.billing.credits has no price for {choice!r}")
    if b.unit == "second":
        spec = fields.get(b.duration_field or "")
        if b.seconds is None and (spec is None or spec.type not in ("integer", "number")):
            raise CatalogError(
                f"{where}.billing: per-second pricing needs a numeric duration_field or seconds"
            )
        if spec is not None and b.seconds is None and spec.default is None and not spec.required:
            raise CatalogError(f"{where}.billing: duration field needs a default")
    if b.unit == "stem_minute" and (b.count_field or "") not in fields:
        raise CatalogError(f"{where}.billing.count_field must name a schema field")
    if b.unit == "thousand_characters":
        spec = fields.get(b.count_field or "")
        if spec is None or spec.type != "string" or not spec.required:
            # An optional text would let a request without it through for nothing.
            raise CatalogError(
                f"{where}.billing: per-character pricing needs count_field naming a required "
                "string field"
            )


def serves(model: TaskModel, channel_type: str, channel_models: Sequence[str]) -> bool:
    """Whether a channel may carry the model: it lists the model, and speaks the adapter
    family the schema's field names are written for, or one the entry maps them to. A chained
    reapi gateway takes the same fields as this one, so it may carry any model."""
    if model.name not in channel_models:
        return False
    return (
        model.channel_type in (None, channel_type)
        or channel_type == "reapi"
        or channel_type in model.upstream
    )


def resolve_model(
    catalog: Mapping[str, TaskModel], body: object, kind: MediaKind | None = None
) -> TaskModel:
    """The model a submit body names, checked against the endpoint's media kind."""
    if not isinstance(body, dict):
        raise TaskError(TaskErrorCode.MALFORMED_BODY)
    name = body.get("model")
    if name is None:
        raise TaskError(
            TaskErrorCode.MISSING_PARAMETER, "Missing required parameter model", param="model"
        )
    if not isinstance(name, str):
        raise TaskError(TaskErrorCode.WRONG_TYPE, "model must be a string", param="model")
    model = catalog.get(name)
    if model is None:
        raise TaskError(TaskErrorCode.UNKNOWN_MODEL, f"Unknown model {name!r}", param="model")
    if kind is not None and model.kind != kind:
        raise TaskError(
            TaskErrorCode.WRONG_ENDPOINT,
            f"{name} is a {model.kind} model: submit it to {_submit_path(model.kind)}",
            param="model",
        )
    return model


def _submit_path(kind: MediaKind) -> str:
    return f"/api/v1{SUBMIT_PATHS[kind]}"


def validate_task_request(
    model: TaskModel, body: Mapping[str, Any], *, policy: UrlPolicy = STRICT
) -> dict[str, Any]:
    """The request's parameters, checked and with defaults filled in, minus ``model``. Raises
    ``TaskError`` (2xxxx) naming the parameter. URL fields get the DNS-free SSRF checks only;
    run ``check_request_urls`` afterwards for the resolving ones."""
    fields = {k: v for k, v in body.items() if k != "model"}
    params = validate_fields(model.schema, fields, policy)
    for group in model.exclusive:
        present = [n for n in group if n in params]
        if len(present) > 1:
            raise TaskError(
                TaskErrorCode.CONFLICTING_PARAMETERS,
                f"{' and '.join(present)} cannot be combined",
                param=present[1],
            )
    mode = task_mode(model, params)
    if mode is not None:
        for name in mode.requires:
            if name not in params:
                raise TaskError(
                    TaskErrorCode.MISSING_PARAMETER,
                    f"Missing required parameter {name} (needed in {mode.name} mode)",
                    param=name,
                )
    return params


def task_mode(model: TaskModel, params: Mapping[str, Any]) -> Mode | None:
    for mode in model.modes:
        if not mode.when_any or any(params.get(n) for n in mode.when_any):
            return mode
    return None


async def check_request_urls(
    model: TaskModel,
    params: Mapping[str, Any],
    *,
    policy: UrlPolicy = STRICT,
    resolver: Resolver | None = None,
) -> None:
    """Resolve every URL in the params; any private, reserved or unresolvable host is a 2xxxx."""
    for path, url in iter_urls(model.schema, params):
        await check_url(url, policy, resolver=resolver, param=path)


def price(
    model: TaskModel, params: Mapping[str, Any], *, source_seconds: Decimal | int | None = None
) -> int:
    """Exact cost in money units (1 credit = 10**6 units) of one validated request.

    ``source_seconds`` is the probed length of the source media, required for the
    per-source-minute units: minutes are rounded up, a started minute counts whole.
    """
    b = model.billing
    if b is None or b.credits is None:
        # Startup refuses channels for such models, so no request should get here.
        raise CatalogError(f"models.{model.name} has no price: {model.missing_price()}")
    rate = b.credits
    if isinstance(rate, Mapping):
        assert b.tier_field is not None
        tier = params.get(b.tier_field)
        found = _tier_rate(rate, tier)
        if found is None:
            raise CatalogError(f"models.{model.name}: no price for {b.tier_field}={tier!r}")
        rate = found
    units = credits_to_units(rate)
    if b.unit == "generation":
        return units
    if b.unit in ("image", "song"):
        return units * _count(params.get(b.count_field or ""))
    if b.unit == "second":
        seconds = params.get(b.duration_field or "") if b.duration_field else None
        exact = Decimal(str(seconds if seconds is not None else b.seconds)) * units
        return math.ceil(exact)
    if b.unit == "thousand_characters":
        text = params.get(b.count_field or "")
        characters = len(text) if isinstance(text, str) else 0
        return -(-characters * units // 1000)  # a started unit of money counts whole
    if source_seconds is None:
        raise ValueError(f"{model.name} is priced per source minute: pass source_seconds")
    minutes = source_minutes(source_seconds)
    if b.unit == "source_minute":
        return units * minutes
    return units * minutes * _count(params.get(b.count_field or ""))


def source_minutes(source_seconds: Decimal | int) -> int:
    seconds = Decimal(str(source_seconds))
    if seconds < 0:
        raise ValueError("source duration cannot be negative")
    return max(1, math.ceil(seconds / 60))


def _count(value: object) -> int:
    if isinstance(value, list):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return 1


def _tier_rate(rates: Mapping[str, Decimal], tier: object) -> Decimal | None:
    if tier is None:
        return None
    key = str(tier)
    if key in rates:
        return rates[key]
    folded = [v for k, v in rates.items() if k.casefold() == key.casefold()]
    return folded[0] if len(folded) == 1 else None


def _opt_str(value: object, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise CatalogError(f"{where} must be a string")
    return value


def _positive(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError(f"{where} must be a positive integer")
    return value


def check_source_duration(model: TaskModel, source_seconds: Decimal | int, param: str) -> None:
    """Refuse a source longer than the model allows, before anything is debited."""
    limit = model.max_source_seconds
    if limit is not None and Decimal(str(source_seconds)) > limit:
        raise TaskError(
            TaskErrorCode.OUT_OF_RANGE,
            f"{param} is longer than the {limit // 60}-minute limit of {model.name}",
            param=param,
        )
