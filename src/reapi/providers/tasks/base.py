"""What every task upstream adapter provides, and the value types it trades in.

An adapter turns a validated task request into one upstream create call (``submit``) and reads
the upstream job's state (``poll``). Contract, which every adapter keeps:

* ``submit`` makes exactly one create call and never retries it: a retried create can start
  (and bill) a second job. It returns as soon as the upstream has given a job id; the worker
  must persist ``UpstreamJob`` before acknowledging its queue message, so a crash after the
  create call never loses the job. A synchronous API (OpenAI Images) returns the finished
  state inside the ``UpstreamJob``. Failure raises ``SubmitError``, whose ``certain`` says
  whether the upstream surely did not start a job.
* ``poll`` never raises for upstream trouble: transient errors (network, 5xx, 429) read as
  still processing; 404 counts as terminal only after ``NOT_FOUND_LIMIT`` consecutive polls
  (``UpstreamJob.not_found`` carries the count, so persist the job after each poll).
* Adapters use the ``aiohttp.ClientSession`` they are given and never create one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp
import orjson

from reapi.protocols.tasks import MediaKind

NOT_FOUND_LIMIT = 5
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
# Sync APIs hold the request open while they generate.
SYNC_TIMEOUT = aiohttp.ClientTimeout(total=600, sock_connect=10)

JobStatus = Literal["processing", "completed", "failed"]


class ChannelLike(Protocol):
    """The fields of a configured channel an adapter reads (the gateway's channel config, or
    ``TaskChannel`` in tests). ``api_key`` may be a str or a pydantic ``SecretStr``."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def api_key(self) -> object: ...
    @property
    def model_map(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class WireMapping:
    """How one upstream family spells a model's parameters, as catalog data rather than code.

    ``fields`` renames a parameter (ours -> the upstream's: ``{"size": "aspect_ratio"}``);
    ``values`` respells the values of a parameter, keyed by our field name and by the value's
    text (``{"resolution": {"720p": "720P"}}``); a value mapped to None is left out of the
    call, for a choice that means "the upstream's default".
    """

    fields: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# The key of a model's ``upstream`` mappings that applies to every channel type.
ANY_CHANNEL = "*"


class TaskModelLike(Protocol):
    """What an adapter needs of a catalog model (``services.tasks.catalog.TaskModel`` fits);
    a Protocol so providers never import the service layer above them."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> MediaKind: ...
    @property
    def upstream(self) -> Mapping[str, WireMapping]: ...


@dataclass(frozen=True)
class TaskChannel:
    name: str
    type: str
    base_url: str
    api_key: str = ""
    models: Sequence[str] = ()
    model_map: Mapping[str, str] = field(default_factory=dict)


def secret(channel: ChannelLike) -> str:
    key = channel.api_key
    getter = getattr(key, "get_secret_value", None)
    return str(getter()) if callable(getter) else str(key)


def upstream_model(channel: ChannelLike, model: TaskModelLike) -> str:
    return channel.model_map.get(model.name, model.name)


def wire_params(
    channel: ChannelLike, model: TaskModelLike, params: Mapping[str, Any]
) -> dict[str, Any]:
    """The validated params as this channel's upstream spells them: the model's mapping for
    every channel (``*``) with the one for the channel's type over it. Every adapter calls
    this first, so a vendor's field names live in the catalog entry, not in adapter code."""
    mappings = model.upstream
    general = mappings.get(ANY_CHANNEL, WireMapping())
    specific = mappings.get(channel.type, WireMapping())
    names = {**general.fields, **specific.fields}
    values = {**general.values, **specific.values}
    out: dict[str, Any] = {}
    for key, value in params.items():
        respell = values.get(key)
        if respell is not None and value_key(value) in respell:
            value = respell[value_key(value)]
            if value is None:
                continue
        out[names.get(key, key)] = value
    return out


def value_key(value: object) -> str:
    """The key of a value in a ``WireMapping.values`` map: its text, as YAML keys are text, so
    8 and "8" name the same choice (and true is "true", as YAML writes it)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def base_url(channel: ChannelLike) -> str:
    return channel.base_url.rstrip("/")


# The label of a video's last frame image, kept apart from the video outputs.
LAST_FRAME = "last_frame"


@dataclass(frozen=True, slots=True)
class JobOutput:
    """One produced file: a URL to download, or the bytes themselves (b64 answers).
    ``label`` names what a labelled output holds (a stem, ``LAST_FRAME``)."""

    url: str | None = None
    data: bytes | None = None
    content_type: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class JobState:
    status: JobStatus
    outputs: tuple[JobOutput, ...] = ()
    error: str | None = None
    # True when the upstream stated the failure; False when it is inferred (lost job,
    # unreadable result), where the upstream may in fact have produced and billed something.
    certain: bool = True
    # For processing states: why the last poll told nothing new (for logs only).
    detail: str | None = None
    # Set when the upstream refused the content itself (moderation, invalid input): its reason,
    # in words fit for the client. ``error`` is always for the operator's log only.
    refusal: str | None = None

    @classmethod
    def processing(cls, detail: str | None = None) -> JobState:
        return cls("processing", detail=detail)

    @classmethod
    def failed(cls, error: str, *, certain: bool = True, refusal: str | None = None) -> JobState:
        return cls("failed", error=error, certain=certain, refusal=refusal)


@dataclass
class UpstreamJob:
    """The handle the worker stores: plain JSON data, so it survives a restart."""

    channel: str
    job_id: str
    data: dict[str, Any] = field(default_factory=dict)
    not_found: int = 0
    # Set by synchronous APIs: the job finished within the create call.
    result: JobState | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "job_id": self.job_id,
            "data": self.data,
            "not_found": self.not_found,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> UpstreamJob:
        return cls(
            channel=str(raw["channel"]),
            job_id=str(raw["job_id"]),
            data=dict(raw.get("data") or {}),
            not_found=int(raw.get("not_found", 0)),
        )


class SubmitError(Exception):
    """The create call did not yield a job. ``certain`` is True when the upstream answered
    with a refusal (nothing started); False when the outcome is unknown (timeout, dropped
    connection, unreadable answer) and a job may be running and billing upstream.

    ``message`` is for the operator's log (it may name hosts and carry exception text);
    ``reason`` is the upstream's own words about the request, shown to the client only when
    ``rejected``."""

    def __init__(
        self,
        message: str,
        *,
        certain: bool,
        status: int | None = None,
        rejected: bool = False,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.certain = certain
        self.status = status
        # The upstream refused the content itself (moderation, invalid input), not a fault.
        self.rejected = rejected
        self.reason = reason


class TaskAdapter(Protocol):
    type: str

    async def submit(
        self,
        session: aiohttp.ClientSession,
        channel: ChannelLike,
        model: TaskModelLike,
        params: Mapping[str, Any],
    ) -> UpstreamJob: ...

    async def poll(
        self, session: aiohttp.ClientSession, channel: ChannelLike, job: UpstreamJob
    ) -> JobState: ...


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    text: str


async def post_create(
    session: aiohttp.ClientSession,
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    client_timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
) -> Reply:
    """The one create call. Failures before any byte was sent are certain; after that the
    upstream may have accepted the job, so they are not."""
    try:
        async with session.post(
            url,
            data=orjson.dumps(dict(payload)),
            headers={**headers, "Content-Type": "application/json"},
            timeout=client_timeout,
            allow_redirects=False,
        ) as resp:
            text = await resp.text()
            return Reply(resp.status, _json_or_none(text), text)
    except (aiohttp.ClientConnectorError, aiohttp.InvalidURL) as exc:
        # Nothing reached the upstream: no job can exist.
        raise SubmitError(f"cannot reach upstream: {exc!r}", certain=True) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SubmitError(f"upstream create call broke off: {exc!r}", certain=False) from exc


async def get_json(
    session: aiohttp.ClientSession, url: str, headers: Mapping[str, str]
) -> Reply | None:
    """A poll GET; None when the network failed (the caller reads that as still processing)."""
    try:
        async with session.get(url, headers=dict(headers), timeout=DEFAULT_TIMEOUT) as resp:
            text = await resp.text()
            return Reply(resp.status, _json_or_none(text), text)
    except (aiohttp.ClientError, TimeoutError):
        return None


def _json_or_none(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def refused(reply: Reply, what: str) -> SubmitError:
    """A non-2xx create answer. 4xx means the upstream refused and started nothing; a 5xx may
    come from a proxy after the job was queued, so it is not certain."""
    reason = error_text(reply)
    client_error = 400 <= reply.status < 500
    return SubmitError(
        f"{what} answered HTTP {reply.status}: {reason}",
        certain=client_error,
        status=reply.status,
        rejected=reply.status in (400, 422),
        reason=reason,
    )


def error_text(reply: Reply, limit: int = 300) -> str:
    """The upstream's own words, from the common error shapes, else the raw text."""
    body = reply.body
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail")
            if isinstance(value, list) and value and isinstance(value[0], dict):
                value = value[0].get("msg") or value[0].get("message")
            if isinstance(value, str) and value:
                return value[:limit]
    return (reply.text or "").strip()[:limit] or "no details"


def poll_miss(job: UpstreamJob, reply: Reply | None) -> JobState | None:
    """Shared reading of a poll answer that is not a job state: None means "use the body".
    Counts consecutive 404s on the job; resets the count on any other answer."""
    if reply is not None and reply.status == 404:
        job.not_found += 1
        if job.not_found >= NOT_FOUND_LIMIT:
            return JobState.failed(
                f"upstream no longer knows job {job.job_id} ({job.not_found} polls answered 404)",
                certain=False,
            )
        return JobState.processing("upstream answered 404")
    job.not_found = 0
    if reply is None:
        return JobState.processing("poll failed to reach the upstream")
    if reply.status >= 400:
        return JobState.processing(f"poll answered HTTP {reply.status}")
    if reply.body is None:
        return JobState.processing("poll answer is not JSON")
    return None


def data_url_output(text: str) -> JobOutput | None:
    """Some upstreams inline small files as ``data:`` URLs; carry the bytes, not the URL."""
    if not text.startswith("data:") or "," not in text:
        return None
    meta, payload = text[5:].split(",", 1)
    if not meta.endswith(";base64"):
        return None
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    return JobOutput(data=data, content_type=meta[: -len(";base64")] or None)
