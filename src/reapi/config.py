"""The operator's YAML configuration: channels, models and groups, validated into typed objects.

``${NAME}`` (or ``${NAME:-default}``) anywhere in a string is replaced from the environment mapping
the caller passes in, so secrets stay out of the file. Unknown keys are errors: a typo in a price
or a limit must not silently fall back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from reapi.catalog import BUILTIN_CHAT_MODELS, CAPABILITIES
from reapi.services.tasks.defaults import BUILTIN_TASK_MODELS

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Price = Annotated[Decimal, Field(ge=0)]
# Kinds of the models the chat side serves; the task kinds (image, video, audio) are elsewhere.
TEXT_KINDS = ("chat", "embedding")
Capability = Literal["vision", "tools", "thinking", "prompt_caching", "video_input"]
assert set(CAPABILITIES) == set(get_args(Capability))


class ChatModel(_Strict):
    name: str = ""
    # "embedding" models are grouped and documented apart (their pages show embedding calls).
    kind: Literal["chat", "embedding"] = "chat"
    description: str = ""
    capabilities: tuple[Capability, ...] = ()
    # Catalog facts the public docs do not state (config keys, e.g. "max_output_tokens"); the
    # gateway uses its default for them and pages say they are not public.
    unknown: tuple[str, ...] = ()
    owned_by: str = "reapi"
    context_window: int = Field(default=128_000, gt=0)
    max_output_tokens: int = Field(default=128_000, gt=0)
    default_max_tokens: int = Field(default=4096, gt=0)
    temperature_range: tuple[Decimal, Decimal] = (Decimal(0), Decimal(2))
    top_p_range: tuple[Decimal, Decimal] = (Decimal(0), Decimal(1))
    # OpenAI's reasoning models refuse "max_tokens" and want "max_completion_tokens": requests
    # to OpenAI-format channels are renamed accordingly.
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    # Anthropic models that refuse thinking budgets: reasoning effort is sent to them as
    # adaptive thinking with an effort instead.
    adaptive_thinking: bool = False
    # Tokens one image may cost at most, for sizing holds (upstreams bill images by pixels).
    image_tokens: int = Field(default=6400, gt=0)
    input_per_mtok: Price | None = None
    output_per_mtok: Price | None = None
    cached_input_per_mtok: Price | None = None
    cache_write_per_mtok: Price | None = None
    # Served at no charge. Without prices and without this, a model is refused at startup.
    free: bool = False

    @property
    def priced(self) -> bool:
        return self.input_per_mtok is not None and self.output_per_mtok is not None


# Chat upstreams (openai, anthropic, llamacpp) and task upstreams (the rest); each has an
# adapter in reapi.providers. A typo here must fail at startup, not on every request.
ChannelType = Literal[
    "openai", "anthropic", "llamacpp", "openai_images", "fal", "replicate", "reapi", "espeak"
]
# Engines the gateway runs on its own machine: their channels name no base_url.
LOCAL_CHANNEL_TYPES = frozenset({"llamacpp", "espeak"})


class Timeouts(_Strict):
    """Limits on one call to a chat channel, in seconds (docs/configuration.md#timeouts)."""

    # Healthy APIs connect in well under a second; past this the next channel is tried.
    connect: float = Field(default=10.0, gt=0)
    # From sending the request to the first byte of the answer's body. Reasoning models can
    # think for minutes before it, and a non-streaming answer's first byte comes only once it
    # is complete; half the 600 s the official SDKs wait by default.
    first_byte: float = Field(default=300.0, gt=0)
    # The longest silence once an answer has started; upstreams that think mid-stream send
    # keep-alive events well within it.
    between_chunks: float = Field(default=120.0, gt=0)


_TASK_TYPES = frozenset({"openai_images", "fal", "replicate", "reapi"})


class Channel(_Strict):
    name: str
    type: ChannelType
    # Required for every type but the local ones, which the gateway runs itself.
    base_url: str = ""
    api_key: SecretStr = SecretStr("")
    models: list[str]
    model_map: dict[str, str] = {}
    groups: list[str] = ["default"]
    priority: int = 0
    weight: int = Field(default=1, ge=1)
    headers: dict[str, str] = {}
    anthropic_version: str = "2023-06-01"
    # Type-specific options (e.g. the local model's threads) live here, checked by the provider.
    options: dict[str, Any] = {}
    timeouts: Timeouts = Timeouts()

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _needs_url(self) -> Channel:
        if not self.base_url and self.type not in LOCAL_CHANNEL_TYPES:
            raise ValueError(f"channel {self.name!r} needs a base_url")
        if "timeouts" in self.model_fields_set and self.type in _TASK_TYPES:
            # Task calls are bounded by each model's timeout_seconds (docs/tasks.md).
            raise ValueError(f"channel {self.name!r}: timeouts apply to chat channels only")
        return self

    def upstream_model(self, model: str) -> str:
        return self.model_map.get(model, model)


class Group(_Strict):
    name: str = ""
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    max_concurrency: int | None = Field(default=None, gt=0)
    price_ratio: Decimal = Field(default=Decimal(1), ge=0)
    description: str = ""


class Billing(_Strict):
    # Largest hold one request may place, in USD; None holds the worst case (see docs/billing.md).
    hold_cap_usd: Decimal | None = Field(default=None, gt=0)


class TaskS3(_Strict):
    """An S3-compatible bucket for task outputs (AWS S3, R2, MinIO, ...)."""

    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    prefix: str = ""


def _origin_url(value: str | None) -> str | None:
    if value is not None and not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("public_url must be an http(s) URL")
    return value.rstrip("/") if value is not None else None


# Where the docs pages say the gateway is when the operator has not set ``public_url``: the
# address ``reapi serve`` listens on by default.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class TaskSettings(_Strict):
    """The task gateway's runtime: media store, workers, webhooks (docs/tasks.md)."""

    # Origin put in front of /media/... output URLs; None uses the origin the poll came to.
    public_url: str | None = None
    media_dir: str = "media"
    s3: TaskS3 | None = None
    retention_hours: int = Field(default=168, gt=0)
    # Concurrent tasks each ``reapi serve`` process works on; 0 leaves all work to
    # ``reapi worker`` processes.
    workers: int = Field(default=4, ge=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    poll_interval: float = Field(default=2.0, gt=0)
    poll_max_interval: float = Field(default=15.0, gt=0)
    sweep_interval: float = Field(default=300.0, gt=0)
    webhook_secret: SecretStr | None = None
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff: float = Field(default=2.0, gt=0)
    # Networks or host names the SSRF guard lets through besides public addresses. Only for
    # upstreams and media hosts on a trusted private network (and the test suite).
    allow_private: list[str] = []

    _origin = field_validator("public_url")(_origin_url)


class Config(_Strict):
    # The origin customers reach the gateway at (scheme, host, optional port and path prefix);
    # the docs pages put it in every example. None: DEFAULT_PUBLIC_URL on the pages.
    public_url: str | None = None
    channels: list[Channel] = []
    chat_models: dict[str, ChatModel] = {}
    # Entries of ``models:`` that declare a ``kind`` other than chat belong to the task gateway.
    task_models: dict[str, dict[str, Any]] = {}
    groups: dict[str, Group] = {}
    billing: Billing = Billing()
    server: dict[str, Any] = {}
    tasks: TaskSettings = TaskSettings()

    _origin = field_validator("public_url")(_origin_url)

    @property
    def site_url(self) -> str:
        """The gateway's public origin, as the docs pages print it."""
        return self.public_url or DEFAULT_PUBLIC_URL


def load_config(path: Path | None, environ: Mapping[str, str]) -> Config:
    raw: Any = {}
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError("the config file must hold a mapping at the top level")
    return build_config(_interpolate(raw, environ))


def build_config(raw: Mapping[str, Any]) -> Config:
    unknown = set(raw) - {
        "public_url",
        "channels",
        "models",
        "groups",
        "billing",
        "server",
        "tasks",
    }
    if unknown:
        raise ConfigError(f"unknown top-level config keys: {', '.join(sorted(unknown))}")
    models_raw = raw.get("models") or {}
    if not isinstance(models_raw, dict):
        raise ConfigError("models: must be a mapping of model name to settings")
    chat: dict[str, Any] = {name: dict(entry) for name, entry in BUILTIN_CHAT_MODELS.items()}
    tasks: dict[str, dict[str, Any]] = {}
    for name, entry in models_raw.items():
        entry = entry or {}
        if not isinstance(entry, dict):
            raise ConfigError(f"models.{name} must be a mapping")
        if entry.get("kind", "chat") not in TEXT_KINDS:
            tasks[str(name)] = entry
            continue
        builtin = chat.get(name, {})
        merged = {**builtin, **entry}
        # A fact the operator sets is no longer unknown.
        if "unknown" in builtin and "unknown" not in entry:
            merged["unknown"] = [k for k in builtin["unknown"] if k not in entry]
        chat[str(name)] = merged
    groups_raw = raw.get("groups") or {}
    if "default" not in groups_raw:
        groups_raw = {"default": {}, **groups_raw}
    chat_models = {}
    for name, entry in chat.items():
        try:
            chat_models[name] = ChatModel(name=name, **entry)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, prefix=f"models.{name}.")) from None
    try:
        config = Config(
            public_url=raw.get("public_url"),
            channels=raw.get("channels") or [],
            chat_models=chat_models,
            task_models=tasks,
            groups={n: Group(name=n, **(e or {})) for n, e in groups_raw.items()},
            billing=raw.get("billing") or {},
            server=raw.get("server") or {},
            tasks=raw.get("tasks") or {},
        )
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    _check_references(config)
    return config


def _check_references(config: Config) -> None:
    seen: set[str] = set()
    for channel in config.channels:
        if channel.name in seen:
            raise ConfigError(f"two channels are named {channel.name!r}")
        seen.add(channel.name)
        for group in channel.groups:
            if group not in config.groups:
                raise ConfigError(f"channel {channel.name!r} serves unknown group {group!r}")
        for model in channel.models:
            # Built-in task models are known without a models: entry; the task runtime checks
            # task channels against the full task catalog when it starts.
            known_task = model in config.task_models or model in BUILTIN_TASK_MODELS
            if model not in config.chat_models and not known_task:
                raise ConfigError(
                    f"channel {channel.name!r} lists model {model!r}, which is neither in the "
                    "built-in catalog nor under models:"
                )
            chat = config.chat_models.get(model)
            if chat is not None and not chat.priced and not chat.free:
                # Serving a model nobody priced would give it away: say so before it happens.
                raise ConfigError(
                    f"model {model!r} is served by channel {channel.name!r} but has no price: "
                    f"set models.{model}.input_per_mtok and output_per_mtok, or free: true"
                )


def _interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(f"config refers to ${{{name}}}, which is not set in the environment")

        return _ENV_REF.sub(replace, value)
    if isinstance(value, list):
        return [_interpolate(v, environ) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v, environ) for k, v in value.items()}
    return value


def _describe(exc: ValidationError, prefix: str = "") -> str:
    problems = []
    for error in exc.errors():
        where = prefix + ".".join(str(p) for p in error["loc"])
        problems.append(f"{where}: {error['msg']}")
    return "invalid config: " + "; ".join(problems)
