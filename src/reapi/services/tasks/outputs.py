"""Getting an upstream's outputs into the gateway's hands, shaping them for the client, and
naming why a task failed.

``download_output`` fetches one output file through the caller's session, which must be built
on ``urls.guarded_connector`` (upstream output URLs are attacker-influenced: a hostile or
compromised upstream could point them at internal services); only a file on the task
channel's own origin is fetched like an API call (``ChannelOrigin``). ``submit_failure`` and
``job_failure`` turn adapter outcomes into the task error code a failed task shows. What a
client reads never holds exception text, upstream hosts or ports: those go in
``TaskError.detail``, for the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from yarl import URL

from reapi.protocols.tasks import MediaKind, TaskError, TaskErrorCode, TaskOutput, Track
from reapi.providers.tasks.base import LAST_FRAME, JobOutput, JobState, SubmitError

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=600, sock_connect=10, sock_read=60)
_MIB = 1024 * 1024
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class Media:
    data: bytes
    content_type: str | None


class DownloadFailed(Exception):
    """A file could not be fetched. ``reason`` may be shown to a client (it names no host and
    carries no exception text); ``detail`` says what happened, for the operator's log."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ChannelOrigin:
    """A task channel's own origin (scheme, host, port of its ``base_url``) and the session its
    API calls go through. The operator configured that origin and the worker already calls it,
    wherever it is (a chained gateway on a private network), so outputs it serves itself are
    fetched the same way, without the address guard and without the channel's key. A redirect
    that leaves the origin goes back through the guard."""

    origin: tuple[str, str, int]
    session: aiohttp.ClientSession

    @classmethod
    def of(cls, base_url: str, session: aiohttp.ClientSession) -> ChannelOrigin | None:
        origin = _origin(base_url)
        return cls(origin, session) if origin is not None else None

    def serves(self, url: str) -> bool:
        return _origin(url) == self.origin


def _origin(url: str) -> tuple[str, str, int] | None:
    # yarl's reading, since it is what aiohttp connects to.
    try:
        parsed = URL(url)
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.port is None:
        return None
    return parsed.scheme, parsed.host, parsed.port


async def download(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
    direct: ChannelOrigin | None = None,
) -> Media:
    """The bytes at ``url``, through ``session`` (built on ``urls.guarded_connector``), or
    through ``direct``'s session while the URL stays on that channel's origin. Raises
    ``DownloadFailed`` when it answers other than 200, breaks off, or exceeds ``max_bytes``."""
    try:
        for _ in range(_MAX_REDIRECTS + 1):
            if direct is None or not direct.serves(url):
                break
            async with direct.session.get(
                url, timeout=_DOWNLOAD_TIMEOUT, allow_redirects=False
            ) as resp:
                location = resp.headers.get("Location")
                if resp.status not in _REDIRECTS or location is None:
                    return await _read(resp, url, max_bytes)
                url = str(URL(url).join(URL(location)))
        else:
            raise DownloadFailed(
                "the file could not be downloaded", f"GET {url}: too many redirects"
            )
        async with session.get(
            url, timeout=_DOWNLOAD_TIMEOUT, max_redirects=_MAX_REDIRECTS
        ) as resp:
            return await _read(resp, url, max_bytes)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        raise DownloadFailed("the file could not be downloaded", f"GET {url}: {exc!r}") from exc


async def _read(resp: aiohttp.ClientResponse, url: str, max_bytes: int) -> Media:
    if resp.status != 200:
        raise DownloadFailed(
            f"the file answered HTTP {resp.status}", f"GET {url}: HTTP {resp.status}"
        )
    limit = f"{max_bytes // _MIB} MiB" if max_bytes >= _MIB else f"{max_bytes} bytes"
    too_large = f"the file is too large (over {limit})"
    if (resp.content_length or 0) > max_bytes:
        raise DownloadFailed(too_large, f"GET {url}: {resp.content_length} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > max_bytes:
            raise DownloadFailed(too_large, f"GET {url}: over {max_bytes} bytes")
        chunks.append(chunk)
    return Media(b"".join(chunks), resp.headers.get("Content-Type"))


async def download_output(
    session: aiohttp.ClientSession,
    output: JobOutput,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    direct: ChannelOrigin | None = None,
) -> Media:
    """The bytes of one output (see ``download``). Raises ``TaskError(OUTPUT_UNAVAILABLE)``
    when the URL has expired, is refused by the guard, breaks off, or exceeds ``max_bytes``."""
    if output.data is not None:
        return Media(output.data, output.content_type)
    if output.url is None:
        raise TaskError(
            TaskErrorCode.OUTPUT_UNAVAILABLE, detail="upstream output has neither URL nor data"
        )
    try:
        media = await download(session, output.url, max_bytes=max_bytes, direct=direct)
    except DownloadFailed as exc:
        raise TaskError(
            TaskErrorCode.OUTPUT_UNAVAILABLE,
            f"{TaskErrorCode.OUTPUT_UNAVAILABLE.default_message}: {exc.reason}",
            detail=exc.detail,
        ) from exc
    return Media(media.data, media.content_type or output.content_type)


def task_output(kind: MediaKind, mirrored: Sequence[tuple[JobOutput, str]]) -> TaskOutput:
    """The client-facing output from each upstream output and the URL it was mirrored to:
    the last frame goes to ``last_frame_url``, labelled files also become ``tracks``."""
    urls: list[str] = []
    tracks: list[Track] = []
    last_frame: str | None = None
    for output, url in mirrored:
        if output.label == LAST_FRAME:
            last_frame = url
            continue
        urls.append(url)
        if output.label:
            tracks.append(Track(kind, output.label, url))
    return TaskOutput(urls, tracks, last_frame)


def submit_failure(error: SubmitError) -> TaskError:
    """What the client sees when the create call failed. Content refusals are the caller's
    (50006, still refunded) and carry the upstream's reason; anything else is the upstream's
    fault (50002), told in the code's own words, with the cause only in the log."""
    if error.rejected:
        return _refused(error.reason, error.message)
    return TaskError(TaskErrorCode.UPSTREAM_FAILED, detail=error.message)


def job_failure(state: JobState) -> TaskError:
    assert state.status == "failed"
    detail = state.error or "upstream job failed"
    if state.refusal is not None:
        return _refused(state.refusal, detail)
    return TaskError(TaskErrorCode.UPSTREAM_FAILED, detail=detail)


def _refused(reason: str | None, detail: str) -> TaskError:
    message = TaskErrorCode.UPSTREAM_REJECTED.default_message
    return TaskError(
        TaskErrorCode.UPSTREAM_REJECTED, f"{message}: {reason}" if reason else None, detail=detail
    )


def timeout_failure(timeout_seconds: int) -> TaskError:
    return TaskError(
        TaskErrorCode.UPSTREAM_TIMEOUT, f"upstream did not finish within {timeout_seconds} s"
    )
