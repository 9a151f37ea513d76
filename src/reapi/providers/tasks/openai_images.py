"""OpenAI Images API (https://platform.openai.com/docs/api-reference/images), v1.

Synchronous: ``POST /v1/images/generations`` (text only) or ``POST /v1/images/edits`` with a
JSON body whose ``images`` are ``{"image_url": ...}`` references (when the request carries
``image_urls``) answers ``{"created", "data": [{"b64_json"} | {"url"}]}`` once the images
exist, so ``submit`` returns the finished state and ``poll`` has nothing to ask.

reapi's image schema speaks in an aspect ratio (``size``) and a resolution tier; the API
wants pixels, so the adapter turns the pair into ``WIDTHxHEIGHT`` (long edge by tier,
multiples of 16).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import aiohttp

from reapi.providers.tasks.base import (
    SYNC_TIMEOUT,
    ChannelLike,
    JobOutput,
    JobState,
    SubmitError,
    TaskModelLike,
    UpstreamJob,
    base_url,
    post_create,
    refused,
    secret,
    upstream_model,
    wire_params,
)

_LONG_EDGE = {"1k": 1024, "2k": 2048, "4k": 3840}
_REJECTION_CODES = frozenset({"moderation_blocked", "content_policy_violation"})


def pixel_size(size: str | None, resolution: str | None) -> str | None:
    """``16:9`` at ``2k`` -> ``2048x1152``. Without an aspect ratio (absent or ``auto``) a
    resolution the customer paid for still reaches the API, as a square; with neither, the
    API chooses."""
    if size is None or size == "auto":
        if resolution is None:
            return size
        size = "1:1"
    if "x" in size:
        return size  # already pixels: an operator schema may expose the API's own sizes
    w, h = (int(part) for part in size.split(":"))
    long_edge = _LONG_EDGE.get((resolution or "1k").lower(), 1024)
    short = round(long_edge * min(w, h) / max(w, h) / 16) * 16
    return f"{long_edge}x{short}" if w >= h else f"{short}x{long_edge}"


def build_request(model: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(path, body) for the validated params."""
    body: dict[str, Any] = {"model": model}
    for key, value in params.items():
        if key not in ("size", "resolution", "image_urls"):
            body[key] = value
    size = pixel_size(params.get("size"), params.get("resolution"))
    if size is not None:
        body["size"] = size
    refs = params.get("image_urls") or []
    if refs:
        body["images"] = [{"image_url": url} for url in refs]
        return "/v1/images/edits", body
    return "/v1/images/generations", body


class OpenAIImagesAdapter:
    type = "openai_images"

    async def submit(
        self,
        session: aiohttp.ClientSession,
        channel: ChannelLike,
        model: TaskModelLike,
        params: Mapping[str, Any],
    ) -> UpstreamJob:
        path, body = build_request(
            upstream_model(channel, model), wire_params(channel, model, params)
        )
        root = base_url(channel).removesuffix("/v1")
        reply = await post_create(
            session,
            root + path,
            body,
            {"Authorization": f"Bearer {secret(channel)}"},
            client_timeout=SYNC_TIMEOUT,
        )
        if reply.status >= 400:
            error = refused(reply, "OpenAI Images")
            err = reply.body.get("error") if isinstance(reply.body, dict) else None
            if isinstance(err, dict) and err.get("code") in _REJECTION_CODES:
                error.rejected = True
            raise error
        if not isinstance(reply.body, dict) or not isinstance(reply.body.get("data"), list):
            # The images may exist and be billed; we just cannot read them.
            raise SubmitError("OpenAI Images answer has no data list", certain=False)
        content_type = f"image/{params.get('output_format') or 'png'}"
        outputs = [_output(item, content_type) for item in reply.body["data"]]
        found = tuple(o for o in outputs if o is not None)
        result = (
            JobState("completed", found)
            if found
            else JobState.failed("OpenAI Images returned no image", certain=False)
        )
        created = reply.body.get("created")
        return UpstreamJob(channel.name, f"sync-{created}", {"sync": True}, result=result)

    async def poll(
        self, session: aiohttp.ClientSession, channel: ChannelLike, job: UpstreamJob
    ) -> JobState:
        # Only reached when a worker lost the result that submit returned (e.g. a crash
        # between the create call and mirroring): there is no upstream job to ask.
        if job.result is not None:
            return job.result
        return JobState.failed(
            "synchronous OpenAI Images result was lost before it was stored", certain=False
        )


def _output(item: object, content_type: str) -> JobOutput | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("b64_json"), str):
        try:
            data = base64.b64decode(item["b64_json"], validate=True)
        except (binascii.Error, ValueError):
            return None
        return JobOutput(data=data, content_type=content_type)
    if isinstance(item.get("url"), str):
        return JobOutput(url=item["url"], content_type=content_type)
    return None
