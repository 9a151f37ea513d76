"""fal's queue API (https://docs.fal.ai/documentation/model-apis/inference/queue).

``POST {queue}/{app_id}`` with ``Authorization: Key <key>`` and the model input as the JSON
body answers ``{request_id, status_url, response_url, cancel_url}``. ``GET status_url``
answers ``{"status": "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED", ...}``; a completed request
that failed carries ``error`` (and ``error_type``). ``GET response_url`` answers the model's
output, whose files are ``{"url", "content_type", ...}`` objects (``images: [...]``,
``video: {...}``, ``audio: {...}``), or the failure as ``{"detail": ...}`` with an error status.

The status and response URLs come from the upstream; the adapter only follows them when they
point at the channel's own origin, since it sends the channel key along.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from reapi.providers.tasks.base import (
    ChannelLike,
    JobOutput,
    JobState,
    SubmitError,
    TaskModelLike,
    UpstreamJob,
    base_url,
    error_text,
    get_json,
    poll_miss,
    post_create,
    refused,
    secret,
    upstream_model,
    wire_params,
)


def _headers(channel: ChannelLike) -> dict[str, str]:
    return {"Authorization": f"Key {secret(channel)}"}


def _same_origin(url: object, root: str) -> bool:
    if not isinstance(url, str):
        return False
    a, b = urlsplit(url), urlsplit(root)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _request_root(root: str, app_id: str, request_id: str) -> str:
    # Queue URLs address the app by owner/name only, without a sub-path like /text-to-video.
    owner_and_name = "/".join(app_id.split("/")[:2])
    return f"{root}/{owner_and_name}/requests/{request_id}"


class FalAdapter:
    type = "fal"

    async def submit(
        self,
        session: aiohttp.ClientSession,
        channel: ChannelLike,
        model: TaskModelLike,
        params: Mapping[str, Any],
    ) -> UpstreamJob:
        root = base_url(channel)
        app_id = upstream_model(channel, model).strip("/")
        payload = wire_params(channel, model, params)
        reply = await post_create(session, f"{root}/{app_id}", payload, _headers(channel))
        if reply.status >= 400:
            raise refused(reply, "fal queue")
        body = reply.body
        request_id = body.get("request_id") if isinstance(body, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise SubmitError("fal queue answer has no request_id", certain=False)
        fallback = _request_root(root, app_id, request_id)
        status_url = body.get("status_url")
        response_url = body.get("response_url")
        return UpstreamJob(
            channel.name,
            request_id,
            {
                "status_url": status_url
                if _same_origin(status_url, root)
                else f"{fallback}/status",
                "response_url": response_url if _same_origin(response_url, root) else fallback,
            },
        )

    async def poll(
        self, session: aiohttp.ClientSession, channel: ChannelLike, job: UpstreamJob
    ) -> JobState:
        reply = await get_json(session, job.data["status_url"], _headers(channel))
        early = poll_miss(job, reply)
        if early is not None:
            return early
        assert reply is not None
        body = reply.body
        status = body.get("status") if isinstance(body, dict) else None
        if status in ("IN_QUEUE", "IN_PROGRESS"):
            return JobState.processing()
        if status != "COMPLETED":
            return JobState.processing(f"unexpected fal status {status!r}")
        if body.get("error"):
            kind = body.get("error_type")
            suffix = f" ({kind})" if isinstance(kind, str) else ""
            return JobState.failed(f"{body['error']}{suffix}")
        return await self._result(session, channel, job)

    async def _result(
        self, session: aiohttp.ClientSession, channel: ChannelLike, job: UpstreamJob
    ) -> JobState:
        reply = await get_json(session, job.data["response_url"], _headers(channel))
        if reply is None:
            return JobState.processing("result fetch failed to reach fal")
        if reply.status >= 400:
            if isinstance(reply.body, dict) and "detail" in reply.body:
                return JobState.failed(f"fal request failed: {error_text(reply)}")
            return JobState.processing(f"result fetch answered HTTP {reply.status}")
        outputs = tuple(_files(reply.body))
        if not outputs:
            return JobState.failed("fal result holds no output file", certain=False)
        return JobState("completed", outputs)


def _files(node: Any) -> Iterator[JobOutput]:
    """Every ``{"url": ...}`` file object in the result, in document order."""
    if isinstance(node, dict):
        url = node.get("url")
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            content_type = node.get("content_type")
            yield JobOutput(
                url=url, content_type=content_type if isinstance(content_type, str) else None
            )
            return
        for value in node.values():
            yield from _files(value)
    elif isinstance(node, list):
        for item in node:
            yield from _files(item)
