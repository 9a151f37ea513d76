"""Another gateway speaking reapi's own task API (docs/tasks.md), to chain gateways.

``POST {base}/api/v1/{images|videos|audio}/generations`` with ``Authorization: Bearer`` and
``{"model", ...params}`` answers ``{"id": "task_...", "status": "processing", ...}``;
``GET {base}/api/v1/tasks/{id}`` answers the task object: ``output.{image,video,audio}_urls``
(plus labelled ``tracks``) when completed, ``error: {code, message}`` when failed. Errors use
the ``{"error": {"code", "message", "request_id"}}`` envelope; the upstream's code is kept in
the failure's log text so an operator can trace it, and only its content refusals (2xxxx,
50006) are passed on to the client in its words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from reapi.protocols.tasks import OUTPUT_FIELDS, SUBMIT_PATHS
from reapi.providers.tasks.base import (
    LAST_FRAME,
    ChannelLike,
    JobOutput,
    JobState,
    SubmitError,
    TaskModelLike,
    UpstreamJob,
    base_url,
    get_json,
    poll_miss,
    post_create,
    refused,
    secret,
    upstream_model,
    wire_params,
)


def _headers(channel: ChannelLike) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret(channel)}"}


def _api_root(channel: ChannelLike) -> str:
    return base_url(channel).removesuffix("/api/v1") + "/api/v1"


def _task_id(body: Any) -> str | None:
    """``id`` per the contract; ``task_id`` and ``data[0].task_id`` are read too, since some
    deployments answer in those older shapes."""
    if not isinstance(body, dict):
        return None
    for candidate in (body.get("id"), body.get("task_id")):
        if isinstance(candidate, str) and candidate:
            return candidate
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        nested = data[0].get("task_id")
        if isinstance(nested, str) and nested:
            return nested
    return None


class ReapiAdapter:
    type = "reapi"

    async def submit(
        self,
        session: aiohttp.ClientSession,
        channel: ChannelLike,
        model: TaskModelLike,
        params: Mapping[str, Any],
    ) -> UpstreamJob:
        url = _api_root(channel) + SUBMIT_PATHS[model.kind]
        payload = {**wire_params(channel, model, params), "model": upstream_model(channel, model)}
        reply = await post_create(session, url, payload, _headers(channel))
        if reply.status >= 400:
            error = refused(reply, "upstream gateway")
            # Its 2xxxx codes are refusals of the content; 3xxxx/4xxxx are our account's state.
            code = _error_code(reply.body)
            error.rejected = code is not None and code // 10000 == 2
            raise error
        task_id = _task_id(reply.body)
        if task_id is None:
            raise SubmitError("upstream gateway answer has no task id", certain=False)
        return UpstreamJob(channel.name, task_id, {"kind": model.kind})

    async def poll(
        self, session: aiohttp.ClientSession, channel: ChannelLike, job: UpstreamJob
    ) -> JobState:
        reply = await get_json(
            session, f"{_api_root(channel)}/tasks/{job.job_id}", _headers(channel)
        )
        early = poll_miss(job, reply)
        if early is not None:
            return early
        assert reply is not None
        return task_state(reply.body)


def _error_code(body: Any) -> int | None:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else None


def task_state(body: Any) -> JobState:
    status = body.get("status") if isinstance(body, dict) else None
    if status == "processing":
        return JobState.processing()
    if status == "failed":
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        code = _error_code(body)
        prefix = f"[{code}] " if code is not None else ""
        # Its 2xxxx and 50006 failures are refusals of the content, in words for the client.
        refused = code is not None and (code // 10000 == 2 or code == 50006)
        return JobState.failed(
            f"{prefix}{message or 'upstream task failed'}",
            refusal=(message or "the upstream refused the request") if refused else None,
        )
    if status != "completed":
        return JobState.processing(f"unexpected task status {status!r}")
    output = body.get("output")
    outputs = _outputs(output) if isinstance(output, dict) else ()
    if not outputs:
        return JobState.failed("upstream task completed without output URLs", certain=False)
    return JobState("completed", outputs)


def _outputs(output: Mapping[str, Any]) -> tuple[JobOutput, ...]:
    labels: dict[str, str] = {}
    tracks = output.get("tracks")
    for track in tracks if isinstance(tracks, list) else ():
        if isinstance(track, dict) and isinstance(track.get("url"), str):
            labels[track["url"]] = str(track.get("label") or "")
    urls: list[str] = []
    for field in OUTPUT_FIELDS.values():
        value = output.get(field)
        if isinstance(value, list):
            urls += [u for u in value if isinstance(u, str)]
    # Tracks not also listed among the URLs still are outputs.
    urls += [u for u in labels if u not in urls]
    outputs = [JobOutput(url=u, label=labels.get(u) or None) for u in urls]
    last_frame = output.get("last_frame_url")
    if isinstance(last_frame, str) and outputs:
        outputs.append(JobOutput(url=last_frame, label=LAST_FRAME))
    return tuple(outputs)
