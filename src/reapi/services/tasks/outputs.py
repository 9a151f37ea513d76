"""Getting an upstream's outputs into the gateway's hands, shaping them for the client, and
naming why a task failed.

``download_output`` fetches one output file through the caller's session, which must be built
on ``urls.guarded_connector`` (upstream output URLs are attacker-influenced: a hostile or
compromised upstream could point them at internal services). ``submit_failure`` and
``job_failure`` turn adapter outcomes into the task error code a failed task shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from reapi.protocols.tasks import MediaKind, TaskError, TaskErrorCode, TaskOutput, Track
from reapi.providers.tasks.base import LAST_FRAME, JobOutput, JobState, SubmitError

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=600, sock_connect=10, sock_read=60)


@dataclass(frozen=True, slots=True)
class Media:
    data: bytes
    content_type: str | None


async def download_output(
    session: aiohttp.ClientSession, output: JobOutput, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> Media:
    """The bytes of one output. Raises ``TaskError(OUTPUT_UNAVAILABLE)`` when the URL has
    expired, is refused by the guard, breaks off, or exceeds ``max_bytes``."""
    if output.data is not None:
        return Media(output.data, output.content_type)
    if output.url is None:
        raise TaskError(
            TaskErrorCode.OUTPUT_UNAVAILABLE, "upstream output has neither URL nor data"
        )
    try:
        async with session.get(output.url, timeout=_DOWNLOAD_TIMEOUT, max_redirects=5) as resp:
            if resp.status != 200:
                raise TaskError(
                    TaskErrorCode.OUTPUT_UNAVAILABLE,
                    f"upstream output answered HTTP {resp.status} (expired or removed)",
                )
            if (resp.content_length or 0) > max_bytes:
                raise TaskError(TaskErrorCode.OUTPUT_UNAVAILABLE, "upstream output is too large")
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise TaskError(
                        TaskErrorCode.OUTPUT_UNAVAILABLE, "upstream output is too large"
                    )
                chunks.append(chunk)
            content_type = resp.headers.get("Content-Type") or output.content_type
            return Media(b"".join(chunks), content_type)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise TaskError(
            TaskErrorCode.OUTPUT_UNAVAILABLE, f"upstream output could not be fetched: {exc!r}"
        ) from exc


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
    (50006, still refunded); anything else is the upstream's fault (50002)."""
    code = TaskErrorCode.UPSTREAM_REJECTED if error.rejected else TaskErrorCode.UPSTREAM_FAILED
    return TaskError(code, error.message)


def job_failure(state: JobState) -> TaskError:
    assert state.status == "failed"
    return TaskError(TaskErrorCode.UPSTREAM_FAILED, state.error or "upstream job failed")


def timeout_failure(timeout_seconds: int) -> TaskError:
    return TaskError(
        TaskErrorCode.UPSTREAM_TIMEOUT, f"upstream did not finish within {timeout_seconds} s"
    )
