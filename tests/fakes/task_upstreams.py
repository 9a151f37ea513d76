"""Fake task upstreams on 127.0.0.1 that speak the real wire formats of OpenAI Images, fal's
queue, Replicate's predictions and reapi's own task API.

Each server takes a ``Behaviour`` (success, failure, N polls before completion, refused
create, lost job, flaky polls, output URLs that expire), records every request it receives
for assertions, and serves tiny real media bytes from ``/media/...`` for download tests.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import struct
import threading
import time
import uuid
import wave
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiohttp import web


def _png_1x1() -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)  # 1x1, 8-bit RGBA
    pixels = zlib.compress(b"\x00\xff\x00\x00\xff")  # filter byte + one red pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG_1X1 = _png_1x1()
MP4_BYTES = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
MP3_BYTES = b"ID3\x03\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00" + b"\x00" * 16
MEDIA: dict[str, tuple[bytes, str]] = {
    "image": (PNG_1X1, "image/png"),
    "video": (MP4_BYTES, "video/mp4"),
    "audio": (MP3_BYTES, "audio/mpeg"),
}


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    """A real mono 16-bit WAV of silence lasting ``seconds``."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


_EXT = {"image": "png", "video": "mp4", "audio": "mp3"}

Media = Literal["image", "video", "audio"]


@dataclass
class Behaviour:
    outcome: Literal["success", "fail", "cancel"] = "success"
    polls_before_done: int = 0
    media: Media = "image"
    outputs: int = 1
    # Refuse the create call with this status (and error text).
    create_status: int | None = None
    create_error: str = "invalid input"
    # Output URLs answer 403 after this many downloads each, or after this many seconds.
    expire_after_downloads: int | None = None
    expire_after_seconds: float | None = None
    # Polls answer 404 (the job is lost), or 500 for the first N polls.
    lose_job: bool = False
    flaky_polls: int = 0
    # OpenAI only: answer url items instead of b64_json.
    url_outputs: bool = False
    # reapi/fal/replicate: failure text.
    error: str = "generation failed upstream"
    # The create call answers only once the test sets this (a slow synchronous generation,
    # for exactly as long as the test needs).
    create_release: threading.Event | None = None
    # Origin the output URLs name instead of this fake's own (a CDN, or a dead host).
    output_origin: str | None = None
    # Media downloads answer 302 to the same path on this origin.
    redirect_media_to: str | None = None


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class Job:
    id: str
    params: Any
    media: Media
    created_at: int
    polls: int = 0
    model: str = ""


@dataclass
class _Download:
    count: int = 0
    first_at: float | None = None


class FakeUpstream:
    """Shared plumbing: lifecycle, recording, job bookkeeping, media serving."""

    auth_scheme = "Bearer"

    def __init__(self, behaviour: Behaviour | None = None, *, api_key: str = "test-key") -> None:
        self.behaviour = behaviour or Behaviour()
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.jobs: dict[str, Job] = {}
        self.downloads: dict[str, _Download] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> FakeUpstream:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/media/{job}/{name}", self._media)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode(errors="replace")
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), body))
        return await handler(request)  # type: ignore[no-any-return]

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"{self.auth_scheme} {self.api_key}"

    def new_job(self, params: Any, model: str = "", job_id: str | None = None) -> Job:
        job_id = job_id or f"job{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        job = Job(job_id, params, self.behaviour.media, int(time.time()), model=model)
        self.jobs[job_id] = job
        return job

    def advance(self, job: Job) -> Literal["queued", "running", "done"]:
        """One poll of the job: how far it has got."""
        job.polls += 1
        if job.polls <= self.behaviour.polls_before_done:
            return "queued" if job.polls == 1 else "running"
        return "done"

    def poll_fault(self) -> web.Response | None:
        """404 for a lost job, 500 for the first flaky polls, else None."""
        if self.behaviour.lose_job:
            return _json({"detail": "Not found"}, status=404)
        flaky = self.behaviour.flaky_polls
        if flaky > 0:
            self.behaviour.flaky_polls = flaky - 1
            return web.Response(status=500, text="upstream hiccup")
        return None

    def media_urls(self, job: Job) -> list[str]:
        ext = _EXT[job.media]
        origin = self.behaviour.output_origin or self.base_url
        return [f"{origin}/media/{job.id}/{i}.{ext}" for i in range(self.behaviour.outputs)]

    async def _media(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job"])
        if job is None:
            return web.Response(status=404)
        if self.behaviour.redirect_media_to is not None:
            raise web.HTTPFound(self.behaviour.redirect_media_to + request.path)
        state = self.downloads.setdefault(request.path, _Download())
        now = time.monotonic()
        b = self.behaviour
        expired = (
            b.expire_after_downloads is not None and state.count >= b.expire_after_downloads
        ) or (
            b.expire_after_seconds is not None
            and state.first_at is not None
            and now - state.first_at > b.expire_after_seconds
        )
        if expired:
            return web.Response(status=403, text="Request has expired")
        state.count += 1
        state.first_at = state.first_at or now
        data, content_type = MEDIA[job.media]
        return web.Response(body=data, content_type=content_type)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


class FakeOpenAIImages(FakeUpstream):
    """``POST /v1/images/generations`` and ``/v1/images/edits`` (JSON references)."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/images/generations", self._create)
        app.router.add_post("/v1/images/edits", self._create)

    async def _create(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return _json(
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        b = self.behaviour
        if b.create_release is not None:
            await asyncio.to_thread(b.create_release.wait, 60)
        if b.create_status is not None or b.outcome != "success":
            return _json(
                {
                    "error": {
                        "message": b.create_error,
                        "type": "image_generation_user_error",
                        "param": None,
                        "code": "moderation_blocked",
                    }
                },
                status=b.create_status or 400,
            )
        params = await request.json()
        job = self.new_job(params, params.get("model", ""))
        n = int(params.get("n", 1))
        if b.url_outputs:
            self.behaviour.outputs = n
            data = [{"url": url} for url in self.media_urls(job)]
        else:
            data = [{"b64_json": base64.b64encode(PNG_1X1).decode()} for _ in range(n)]
        return _json(
            {
                "created": job.created_at,
                "data": data,
                "usage": {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110},
            }
        )


class FakeFalQueue(FakeUpstream):
    """``POST /{app_id}``, ``GET /{owner}/{name}/requests/{id}/status`` and ``.../{id}``."""

    auth_scheme = "Key"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{owner}/{name}/requests/{rid}/status", self._status)
        app.router.add_get("/{owner}/{name}/requests/{rid}", self._result)
        app.router.add_post("/{app_id:.+}", self._submit)

    def _urls(self, app_id: str, rid: str) -> dict[str, str]:
        owner_and_name = "/".join(app_id.split("/")[:2])
        root = f"{self.base_url}/{owner_and_name}/requests/{rid}"
        return {
            "response_url": root,
            "status_url": f"{root}/status",
            "cancel_url": f"{root}/cancel",
        }

    async def _submit(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return _json({"detail": "Unauthorized"}, status=401)
        b = self.behaviour
        if b.create_status is not None:
            return _json(
                {
                    "detail": [
                        {"loc": ["body", "prompt"], "msg": b.create_error, "type": "value_error"}
                    ]
                },
                status=b.create_status,
            )
        app_id = request.match_info["app_id"]
        job = self.new_job(await request.json(), app_id)
        return _json({"request_id": job.id, **self._urls(app_id, job.id), "queue_position": 0})

    async def _status(self, request: web.Request) -> web.Response:
        fault = self.poll_fault()
        if fault is not None:
            return fault
        job = self.jobs.get(request.match_info["rid"])
        if job is None or not self.authorized(request):
            return _json({"detail": "Request not found"}, status=404)
        stage = self.advance(job)
        urls = self._urls(job.model, job.id)
        if stage == "queued":
            return _json({"status": "IN_QUEUE", "queue_position": 0, **urls}, status=202)
        if stage == "running":
            return _json({"status": "IN_PROGRESS", "logs": None, **urls}, status=202)
        body: dict[str, Any] = {
            "status": "COMPLETED",
            "logs": None,
            "metrics": {"inference_time": 1.2},
        }
        if self.behaviour.outcome != "success":
            body |= {"error": self.behaviour.error, "error_type": "runner_disconnected"}
        return _json(body | urls)

    async def _result(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["rid"])
        if job is None:
            return _json({"detail": "Request not found"}, status=404)
        if self.behaviour.outcome != "success":
            return _json({"detail": self.behaviour.error}, status=500)
        files = [
            {"url": u, "content_type": MEDIA[job.media][1], "file_size": len(MEDIA[job.media][0])}
            for u in self.media_urls(job)
        ]
        if job.media == "image":
            return _json({"images": [f | {"width": 1, "height": 1} for f in files], "seed": 42})
        return _json({job.media: files[0]})


class FakeReplicate(FakeUpstream):
    """``POST /v1/models/{owner}/{name}/predictions``, ``POST /v1/predictions`` and
    ``GET /v1/predictions/{id}``."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/models/{owner}/{name}/predictions", self._create)
        app.router.add_post("/v1/predictions", self._create)
        app.router.add_get("/v1/predictions/{pid}", self._get)

    def _prediction(self, job: Job, status: str) -> dict[str, Any]:
        b = self.behaviour
        output: Any = None
        error = None
        if status == "succeeded":
            urls = self.media_urls(job)
            output = urls[0] if len(urls) == 1 and job.media != "image" else urls
        elif status == "failed":
            error = b.error
        return {
            "id": job.id,
            "model": job.model,
            "version": "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
            "input": job.params.get("input"),
            "logs": "",
            "output": output,
            "error": error,
            "status": status,
            "created_at": "2026-01-01T00:00:00.000Z",
            "urls": {
                "get": f"{self.base_url}/v1/predictions/{job.id}",
                "cancel": f"{self.base_url}/v1/predictions/{job.id}/cancel",
            },
        }

    async def _create(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return _json(
                {
                    "title": "Unauthenticated",
                    "detail": "You did not pass a valid authentication token",
                    "status": 401,
                },
                status=401,
            )
        b = self.behaviour
        if b.create_status is not None:
            return _json(
                {"title": "Invalid input", "detail": b.create_error, "status": b.create_status},
                status=b.create_status,
            )
        owner, name = request.match_info.get("owner"), request.match_info.get("name")
        job = self.new_job(await request.json(), f"{owner}/{name}" if owner else "")
        return _json(self._prediction(job, "starting"), status=201)

    async def _get(self, request: web.Request) -> web.Response:
        fault = self.poll_fault()
        if fault is not None:
            return fault
        job = self.jobs.get(request.match_info["pid"])
        if job is None or not self.authorized(request):
            return _json({"detail": "Not found."}, status=404)
        stage = self.advance(job)
        if stage != "done":
            return _json(self._prediction(job, "starting" if stage == "queued" else "processing"))
        final = {"success": "succeeded", "fail": "failed", "cancel": "canceled"}[
            self.behaviour.outcome
        ]
        return _json(self._prediction(job, final))


class FakeReapiTasks(FakeUpstream):
    """reapi's own task API: ``POST /api/v1/{kind}/generations`` and ``GET /api/v1/tasks/{id}``."""

    def routes(self, app: web.Application) -> None:
        for path in ("images", "videos", "audio"):
            app.router.add_post(f"/api/v1/{path}/generations", self._submit)
        app.router.add_get("/api/v1/tasks/{tid}", self._get)

    def _error(self, code: int, message: str, status: int) -> web.Response:
        return _json(
            {"error": {"code": code, "message": message, "request_id": f"req_{uuid.uuid4()}"}},
            status=status,
        )

    async def _submit(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        if auth is None:
            return self._error(10001, "Missing Authorization header", 401)
        if not self.authorized(request):
            return self._error(10003, "Invalid API key", 401)
        b = self.behaviour
        if b.create_status is not None:
            code = {400: 20002, 402: 30001, 429: 40001}.get(b.create_status, 50001)
            return self._error(code, b.create_error, b.create_status)
        body = await request.json()
        job = self.new_job(body, body.get("model", ""), f"task_{uuid.uuid4().hex}")
        return _json(
            {"id": job.id, "model": job.model, "status": "processing", "created_at": job.created_at}
        )

    async def _get(self, request: web.Request) -> web.Response:
        fault = self.poll_fault()
        if fault is not None:
            return self._error(20017, "Task not found", 404) if fault.status == 404 else fault
        job = self.jobs.get(request.match_info["tid"])
        if job is None or not self.authorized(request):
            return self._error(20017, "Task not found", 404)
        stage = self.advance(job)
        task: dict[str, Any] = {
            "id": job.id,
            "model": job.model,
            "created_at": job.created_at,
            "status": "processing",
            "output": None,
            "error": None,
        }
        if stage != "done":
            return _json(task)
        if self.behaviour.outcome != "success":
            task |= {
                "status": "failed",
                "error": {
                    "code": 50002,
                    "message": self.behaviour.error,
                    "request_id": f"req_{uuid.uuid4()}",
                },
            }
            return _json(task)
        urls = self.media_urls(job)
        field_name = {"image": "image_urls", "video": "video_urls", "audio": "audio_urls"}[
            job.media
        ]
        output: dict[str, Any] = {field_name: urls}
        if job.media == "audio":
            labels = ["vocals", "no_vocals"]
            output["tracks"] = [
                {"type": "audio", "label": labels[i % 2], "url": u} for i, u in enumerate(urls)
            ]
        return _json(task | {"status": "completed", "output": output})


class FakeMediaHost:
    """A plain file host for source media (what a client's ``audio_url`` points at)."""

    def __init__(self, files: dict[str, tuple[bytes, str]]) -> None:
        self.files = files
        self.hits = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> FakeMediaHost:
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        self.hits += 1
        found = self.files.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[0], content_type=found[1])
