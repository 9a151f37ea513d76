"""The data behind the public pages, built from the running config and the task catalog.

Pure functions of (config, task catalog): no I/O, no templates. Every amount stays a
``Decimal`` until it is printed by ``usd`` or ``decimal_text``, which never round: the pages
show exactly the rates the gateway bills. A model gets a page and a pricing row when some
channel serves it; a catalog entry nobody serves stays off the site. New catalog entries need
nothing here: kinds, schema fields and billing units are all read from the entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from reapi.config import ChatModel, Config, Group
from reapi.protocols.tasks import SUBMIT_PATHS
from reapi.providers.tasks.registry import TASK_ADAPTERS
from reapi.services.tasks.catalog import TaskModel, serves
from reapi.services.tasks.schema import FieldSpec
from reapi.web import examples
from reapi.web.examples import Example

CREDIT_USD = Decimal("0.001")
_TO = " \u2013 "  # an en dash between the ends of a range
# Sidebar order, as on the docs site the project started from.
KIND_LABELS = {
    "image": "Image",
    "audio": "Audio",
    "video": "Video",
    "chat": "Chat",
    "embedding": "Embedding",
}
# Every capability a catalog entry may declare (reapi.catalog.CAPABILITIES), as the pages name it.
CAPABILITY_LABELS = {
    "vision": "Vision input",
    "tools": "Tool use",
    "thinking": "Thinking",
    "prompt_caching": "Prompt caching",
    "video_input": "Video input",
}
UNIT_LABELS = {
    "generation": "per generation",
    "image": "per image",
    "song": "per song",
    "second": "per second of output",
    "source_minute": "per minute of source audio",
    "stem_minute": "per stem per minute of source audio",
    "thousand_characters": "per 1,000 characters",
}
_UNIT_RULES = {
    "generation": "One price per task.",
    "image": "The rate times the number of images asked for ({count}).",
    "song": "The rate times the number of songs asked for ({count}).",
    "second": "The rate times the length of the output in seconds ({duration}).",
    "source_minute": "The rate times the length of the source audio in minutes; a started "
    "minute counts whole.",
    "stem_minute": "The rate times the minutes of source audio (a started minute counts "
    "whole) times the number of stems asked for ({count}).",
    "thousand_characters": "The rate times the number of characters of {count}, divided by 1,000.",
}


def decimal_text(value: Decimal) -> str:
    """A decimal as written, never in exponent notation and never rounded."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def usd(value: Decimal) -> str:
    """``$`` and the exact amount, with at least two decimals (``$3.00``, ``$0.075``)."""
    text = decimal_text(value)
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def tokens(count: int) -> str:
    return f"{count:,}"


def model_href(name: str) -> str:
    return "/docs/models/" + quote(name, safe="/")


@dataclass(frozen=True)
class NavItem:
    name: str
    href: str


@dataclass(frozen=True)
class NavGroup:
    label: str
    items: tuple[NavItem, ...]


@dataclass(frozen=True)
class GroupRow:
    name: str
    description: str
    price_ratio: str
    rpm: str
    tpm: str
    concurrency: str


@dataclass(frozen=True)
class ChatRates:
    input: str
    output: str
    cache_read: str
    cache_write: str


@dataclass(frozen=True)
class ChatPriceRow:
    model: str
    href: str
    owner: str
    free: bool
    rates: ChatRates


@dataclass(frozen=True)
class TaskRate:
    tier: str  # "" for a flat rate
    credits: str
    usd: str


@dataclass(frozen=True)
class TaskPriceRow:
    model: str
    href: str
    kind: str
    unit: str
    tier_field: str | None
    rates: tuple[TaskRate, ...]
    # Why there is no rate, when the catalog and the operator both leave it unset.
    missing: str = ""


@dataclass(frozen=True)
class Pricing:
    chat: tuple[ChatPriceRow, ...]
    tasks: tuple[TaskPriceRow, ...]
    groups: tuple[GroupRow, ...]


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class BodyField:
    name: str
    type: str
    required: bool
    default: str
    constraints: str
    description: str
    children: tuple[BodyField, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    method: str
    url: str
    note: str


@dataclass(frozen=True)
class GroupPrice:
    group: str
    price_ratio: str
    rates: ChatRates


@dataclass(frozen=True)
class ModelDoc:
    name: str
    kind: str
    kind_label: str
    href: str
    summary: str
    facts: tuple[Fact, ...]
    capabilities: tuple[Fact, ...]
    endpoints: tuple[Endpoint, ...]
    body: tuple[BodyField, ...]
    groups: tuple[GroupRow, ...]
    examples: tuple[Example, ...]
    # Chat models: the rates in each group that serves them.
    prices: tuple[GroupPrice, ...] = ()
    # Task models: the rate card and how the unit is counted.
    task_price: TaskPriceRow | None = None
    billing_rule: str = ""
    modes: tuple[Fact, ...] = ()
    exclusive: tuple[str, ...] = ()
    free: bool = False
    # The task examples carry a sample media URL the reader replaces with their own file.
    placeholder_media: bool = False
    # The few facts shown as cards at the top of a page.
    headline: tuple[Fact, ...] = ()


@dataclass(frozen=True)
class Site:
    """Everything the public pages show, built once per configuration."""

    url: str
    nav: tuple[NavGroup, ...]
    pricing: Pricing
    models: Mapping[str, ModelDoc] = field(default_factory=dict)


def build_site(
    config: Config, task_catalog: Mapping[str, TaskModel], listen_url: str | None = None
) -> Site:
    """``listen_url`` (where ``reapi serve`` listens) stands in for an unset ``public_url``."""
    chat = served_chat_models(config)
    tasks = served_task_models(config, task_catalog)
    url = config.public_url or listen_url or config.site_url
    docs: dict[str, ModelDoc] = {}
    for task_model in tasks:
        docs[task_model.name] = task_doc(task_model, url)
    for chat_model in chat:
        docs[chat_model.name] = chat_doc(chat_model, config, url)
    return Site(
        url=url,
        nav=navigation(docs.values()),
        pricing=Pricing(
            chat=tuple(chat_price_row(m) for m in chat),
            tasks=tuple(task_price_row(m) for m in tasks),
            groups=tuple(group_row(g) for g in config.groups.values()),
        ),
        models=docs,
    )


def _chat_channels(config: Config) -> list[Any]:
    return [c for c in config.channels if c.type not in TASK_ADAPTERS]


def served_chat_models(config: Config) -> list[ChatModel]:
    names = {m for c in _chat_channels(config) for m in c.models}
    return [config.chat_models[n] for n in sorted(names) if n in config.chat_models]


def served_task_models(config: Config, catalog: Mapping[str, TaskModel]) -> list[TaskModel]:
    task_channels = [c for c in config.channels if c.type in TASK_ADAPTERS]
    return [
        model
        for name, model in sorted(catalog.items())
        if any(serves(model, c.type, c.models) for c in task_channels)
    ]


def groups_serving(config: Config, model: str) -> list[Group]:
    names = {g for c in _chat_channels(config) if model in c.models for g in c.groups}
    return [g for n, g in config.groups.items() if n in names]


def navigation(docs: Iterable[ModelDoc]) -> tuple[NavGroup, ...]:
    by_kind: dict[str, list[NavItem]] = {}
    for doc in docs:
        by_kind.setdefault(doc.kind, []).append(NavItem(doc.name, doc.href))
    order = [*KIND_LABELS, *sorted(set(by_kind) - set(KIND_LABELS))]
    return tuple(
        NavGroup(KIND_LABELS.get(kind, kind.title()), tuple(sorted(by_kind[kind], key=_by_name)))
        for kind in order
        if kind in by_kind
    )


def _by_name(item: NavItem) -> str:
    return item.name


def _limit(value: int | None) -> str:
    return f"{value:,}" if value else "no limit"


def group_row(group: Group) -> GroupRow:
    return GroupRow(
        name=group.name,
        description=group.description,
        price_ratio=decimal_text(group.price_ratio),
        rpm=_limit(group.rpm),
        tpm=_limit(group.tpm),
        concurrency=_limit(group.max_concurrency),
    )


def chat_rates(model: ChatModel, ratio: Decimal = Decimal(1)) -> ChatRates:
    """The four per-1M-token rates, as billed (cache rates fall back to the input rate)."""
    if model.free or model.input_per_mtok is None or model.output_per_mtok is None:
        return ChatRates("Free", "Free", "Free", "Free")
    given = model.input_per_mtok
    cache_read = model.cached_input_per_mtok if model.cached_input_per_mtok is not None else given
    cache_write = model.cache_write_per_mtok if model.cache_write_per_mtok is not None else given
    return ChatRates(
        input=usd(given * ratio),
        output=usd(model.output_per_mtok * ratio),
        cache_read=usd(cache_read * ratio),
        cache_write=usd(cache_write * ratio),
    )


def chat_price_row(model: ChatModel) -> ChatPriceRow:
    return ChatPriceRow(
        model=model.name,
        href=model_href(model.name),
        owner=model.owned_by,
        free=model.free or not model.priced,
        rates=chat_rates(model),
    )


def task_price_row(model: TaskModel) -> TaskPriceRow:
    billing = model.billing
    href = model_href(model.name)
    label = KIND_LABELS.get(model.kind, model.kind.title())
    if billing is None:
        return TaskPriceRow(model.name, href, label, "", None, (), missing="billing not public")
    unit = UNIT_LABELS.get(billing.unit, "per " + billing.unit.replace("_", " "))
    if billing.unit == "second" and billing.seconds is not None:
        unit += f" ({billing.seconds} s per task)"
    credits: Decimal | Mapping[str, Decimal] | None = billing.credits
    if credits is None:
        return TaskPriceRow(model.name, href, label, unit, None, (), missing="rate not public")
    if isinstance(credits, Mapping):
        rates = tuple(_task_rate(tier, rate) for tier, rate in credits.items())
        return TaskPriceRow(model.name, href, label, unit, billing.tier_field, rates)
    return TaskPriceRow(model.name, href, label, unit, None, (_task_rate("", credits),))


def _task_rate(tier: str, credits: Decimal) -> TaskRate:
    return TaskRate(tier, decimal_text(credits), usd(credits * CREDIT_USD))


def _range(low: Decimal, high: Decimal) -> str:
    return f"{decimal_text(low)}{_TO}{decimal_text(high)}"


def chat_doc(model: ChatModel, config: Config, url: str) -> ModelDoc:
    groups = groups_serving(config, model.name)
    kind = model.kind
    owner = model.owned_by
    summary = model.description or (
        f"A {kind} model by {owner}, served in the OpenAI and the Anthropic wire formats."
    )
    # The gateway has no embeddings endpoint yet: such a model's page says so instead of
    # showing chat calls it would not answer.
    chat = kind == "chat"
    facts = (
        Fact("Model id", model.name),
        Fact("Provider", owner),
        Fact("Context window", _stated(model, "context_window")),
        Fact("Max output per call", _stated(model, "max_output_tokens")),
        Fact("Default max_tokens", f"{tokens(model.default_max_tokens)} tokens"),
        Fact("temperature range", _range(*model.temperature_range)),
        Fact("top_p range", _range(*model.top_p_range)),
    )
    # An entry that lists no capability at all has not said; one that lists some has.
    declared = model.capabilities
    capabilities = tuple(
        Fact(label, "not stated" if not declared else "yes" if key in declared else "no")
        for key, label in CAPABILITY_LABELS.items()
    )
    return ModelDoc(
        name=model.name,
        kind=kind,
        kind_label=KIND_LABELS.get(kind, kind.title()),
        href=model_href(model.name),
        summary=summary,
        facts=facts,
        capabilities=capabilities,
        endpoints=(
            Endpoint("POST", f"{url}/v1/chat/completions", "OpenAI-compatible"),
            Endpoint("POST", f"{url}/v1/messages", "Anthropic-native"),
            Endpoint("POST", f"{url}/v1/messages/count_tokens", "count input tokens, free"),
        )
        if chat
        else (),
        body=chat_body(model, groups) if chat else (),
        groups=tuple(group_row(g) for g in groups),
        examples=examples.chat_examples(model, url) if chat else (),
        prices=tuple(
            GroupPrice(g.name, decimal_text(g.price_ratio), chat_rates(model, g.price_ratio))
            for g in groups
        ),
        free=model.free or not model.priced,
        headline=tuple(
            Fact(label, "not public" if fact in model.unknown else f"{tokens(value)} tokens")
            for fact, label, value in (
                ("context_window", "Context window", model.context_window),
                ("max_output_tokens", "Max output per call", model.max_output_tokens),
            )
        ),
    )


def _stated(model: ChatModel, fact: str) -> str:
    """A token count from the catalog, or what the gateway assumes when it is not public."""
    value = f"{tokens(getattr(model, fact))} tokens"
    if fact in model.unknown:
        return f"not public (the gateway assumes {value})"
    return value


def chat_body(model: ChatModel, groups: Sequence[Group]) -> tuple[BodyField, ...]:
    names = ", ".join(f'"{g.name}"' for g in groups) or "none"
    return (
        BodyField("model", "string", True, "", f'"{model.name}"', "Echoed in every answer."),
        BodyField(
            "messages",
            "array",
            True,
            "",
            "at least one message",
            "The conversation, as in the OpenAI Chat Completions API: objects with a role "
            "(system, developer, user, assistant, tool) and a content that is a string or an "
            "array of parts (text, image_url).",
        ),
        BodyField(
            "max_tokens",
            "integer",
            False,
            str(min(model.default_max_tokens, model.max_output_tokens)),
            f"1{_TO}{model.max_output_tokens}",
            "Upper bound on output tokens; max_completion_tokens is accepted as well. The "
            "worst case is held from the balance while the call runs and the actual usage is "
            "charged.",
        ),
        BodyField(
            "stream",
            "boolean",
            False,
            "false",
            "",
            "Stream the answer as server-sent events, ending with data: [DONE].",
        ),
        BodyField(
            "stream_options",
            "object",
            False,
            "",
            "",
            '{"include_usage": true} adds a final chunk with the token usage.',
        ),
        BodyField(
            "temperature",
            "number",
            False,
            "",
            _range(*model.temperature_range),
            "Sampling temperature; outside the range is a 400.",
        ),
        BodyField(
            "top_p",
            "number",
            False,
            "",
            _range(*model.top_p_range),
            "Nucleus sampling cutoff; outside the range is a 400.",
        ),
        BodyField("stop", "string or array", False, "", "", "Sequences that end the answer."),
        BodyField(
            "tools, tool_choice",
            "array, string or object",
            False,
            "",
            "",
            "OpenAI function calling. Tools are passed to the upstream.",
        ),
        BodyField(
            "group",
            "string",
            False,
            "the key's group",
            names,
            "A reapi extension: the group whose channels, rate limits and price ratio the call "
            "uses. Never sent upstream.",
        ),
    )


def task_doc(model: TaskModel, url: str) -> ModelDoc:
    label = KIND_LABELS.get(model.kind, model.kind.title())
    submit = f"{url}/api/v1{SUBMIT_PATHS[model.kind]}"
    facts = [
        Fact("Model id", model.name),
        Fact("Kind", label),
        Fact("Time limit", f"{model.timeout_seconds:,} s, then the task fails and is refunded"),
    ]
    if model.max_source_seconds is not None:
        facts.append(Fact("Longest source", f"{model.max_source_seconds // 60} minutes"))
    price = task_price_row(model)
    billing = model.billing
    rule = ""
    if billing is not None:
        rule = _UNIT_RULES.get(billing.unit, "").format(
            count=billing.count_field or "1", duration=billing.duration_field or "seconds"
        )
        if billing.unit == "second" and billing.seconds is not None:
            rule = f"The rate times a fixed {billing.seconds} seconds."
        if billing.tier_field is not None:
            rule += f" The rate depends on {billing.tier_field}."
    return ModelDoc(
        name=model.name,
        kind=model.kind,
        kind_label=label,
        href=model_href(model.name),
        summary=model.description or f"A {model.kind} generation model.",
        facts=tuple(facts),
        capabilities=(),
        endpoints=(
            Endpoint("POST", submit, "submit a task (charged when accepted)"),
            Endpoint("GET", f"{url}/api/v1/tasks/{{id}}", "poll a task (free)"),
        ),
        body=(
            BodyField("model", "string", True, "", f'"{model.name}"', "The model to run."),
            *(task_field(name, spec) for name, spec in model.schema.items()),
        ),
        groups=(),
        examples=examples.task_examples(model, url),
        task_price=price,
        billing_rule=rule,
        modes=tuple(
            Fact(mode.name, _mode_text(mode.when_any, mode.requires)) for mode in model.modes
        ),
        exclusive=tuple(" and ".join(group) for group in model.exclusive),
        placeholder_media=examples.uses_placeholder_media(examples.sample_body(model)),
        headline=(Fact("Time limit", f"{model.timeout_seconds:,} s"),),
    )


def _mode_text(when_any: Sequence[str], requires: Sequence[str]) -> str:
    parts = []
    if when_any:
        parts.append("when " + " or ".join(when_any) + " is given")
    else:
        parts.append("otherwise")
    if requires:
        parts.append("needs " + ", ".join(requires))
    return "; ".join(parts)


def _json_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)


def task_field(name: str, spec: FieldSpec) -> BodyField:
    constraints = []
    if spec.enum is not None:
        constraints.append("one of " + ", ".join(_json_text(v) for v in spec.enum))
    if spec.min is not None or spec.max is not None:
        low = decimal_text(spec.min) if spec.min is not None else "…"
        high = decimal_text(spec.max) if spec.max is not None else "…"
        constraints.append(f"{low}{_TO}{high}")
    if spec.min_length is not None or spec.max_length is not None:
        constraints.append(f"{spec.min_length or 0}{_TO}{spec.max_length or '…'} characters")
    if spec.min_items is not None or spec.max_items is not None:
        constraints.append(f"{spec.min_items or 0}{_TO}{spec.max_items or '…'} items")
    type_ = spec.type
    if spec.items is not None:
        type_ = f"array of {spec.items.type}"
        if spec.items.enum is not None:
            constraints.append("items one of " + ", ".join(_json_text(v) for v in spec.items.enum))
    children: tuple[BodyField, ...] = ()
    props = spec.properties or (spec.items.properties if spec.items is not None else None)
    if props:
        children = tuple(task_field(n, s) for n, s in props.items())
    description = spec.description or _FIELD_HINTS.get(spec.type, "")
    return BodyField(
        name=name,
        type=type_,
        required=spec.required,
        default=_json_text(spec.default) if spec.default is not None else "",
        constraints="; ".join(constraints),
        description=description,
        children=children,
    )


_FIELD_HINTS = {
    "url": "A public http(s) URL the gateway can fetch (no data: URLs, no private addresses).",
}
