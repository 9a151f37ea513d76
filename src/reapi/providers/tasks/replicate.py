"""Replicate's predictions API (https://replicate.com/docs/reference/http), v1.

Create with ``POST /v1/models/{owner}/{name}/predictions`` and ``{"input": ...}`` for an
official model, or ``POST /v1/predictions`` with ``{"version", "input"}`` when the channel maps
the model to ``owner/name:version`` (or a bare version id). Either answers a prediction
object; ``GET /v1/predictions/{id}`` reads it again. ``status`` is ``starting`` /
``processing`` / ``succeeded`` / ``failed`` / ``canceled``; ``output`` is whatever the model
returns: a URL, a list of URLs, or an object holding them (``data:`` URLs when the model
inlines small files). ``Prefer: wait`` is never sent: a held-open create that times out would
leave us unsure whether the prediction exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp

from reapi.providers.tasks.base import (
    ChannelLike,
    JobOutput,
    JobState,
    SubmitError,
    TaskModelLike,
    UpstreamJob,
    base_url,
    data_url_output,
    get_json,
    poll_miss,
    post_create,
    refused,
    secret,
    upstream_model,
    wire_params,
)

_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")


def _headers(channel: ChannelLike) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret(channel)}"}


def _root(channel: ChannelLike) -> str:
    return base_url(channel).removesuffix("/v1")


def create_request(target: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(path, body) for ``owner/name``, ``owner/name:version`` or a bare version id."""
    if ":" in target:
        return "/v1/predictions", {"version": target.split(":", 1)[1], "input": dict(params)}
    if _VERSION_ID.match(target):
        return "/v1/predictions", {"version": target, "input": dict(params)}
    return f"/v1/models/{target.strip('/')}/predictions", {"input": dict(params)}


class ReplicateAdapter:
    type = "replicate"

    async def submit(
        self,
        session: aiohttp.ClientSession,
        channel: ChannelLike,
        model: TaskModelLike,
        params: Mapping[str, Any],
    ) -> UpstreamJob:
        path, body = create_request(
            upstream_model(channel, model), wire_params(channel, model, params)
        )
        reply = await post_create(session, _root(channel) + path, body, _headers(channel))
        if reply.status >= 400:
            raise refused(reply, "Replicate")
        pred_id = reply.body.get("id") if isinstance(reply.body, dict) else None
        if not isinstance(pred_id, str) or not pred_id:
            raise SubmitError("Replicate answer has no prediction id", certain=False)
        return UpstreamJob(channel.name, pred_id)

    async def poll(
        self, session: aiohttp.ClientSession, channel: ChannelLike, job: UpstreamJob
    ) -> JobState:
        url = f"{_root(channel)}/v1/predictions/{job.job_id}"
        reply = await get_json(session, url, _headers(channel))
        early = poll_miss(job, reply)
        if early is not None:
            return early
        assert reply is not None
        return prediction_state(reply.body)


def prediction_state(body: Any) -> JobState:
    status = body.get("status") if isinstance(body, dict) else None
    if status in ("starting", "processing"):
        return JobState.processing()
    if status == "failed":
        return JobState.failed(str(body.get("error") or "prediction failed"))
    if status == "canceled":
        return JobState.failed("prediction was canceled upstream")
    if status != "succeeded":
        return JobState.processing(f"unexpected Replicate status {status!r}")
    outputs = tuple(_files(body.get("output")))
    if not outputs:
        return JobState.failed("prediction succeeded without an output file", certain=False)
    return JobState("completed", outputs)


def _files(node: Any) -> Iterator[JobOutput]:
    if isinstance(node, str):
        inline = data_url_output(node)
        if inline is not None:
            yield inline
        elif node.startswith(("http://", "https://")):
            yield JobOutput(url=node)
    elif isinstance(node, list):
        for item in node:
            yield from _files(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _files(value)
