"""``create_app(settings)``: the one composition root.

The lifespan owns every long-lived resource (database engine, upstream connection pool,
background flushers) and builds the services from them; handlers reach them through
``app.state.gateway``. Nothing here is module-level state.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from reapi.config import Config, load_config
from reapi.errors import GatewayError, MethodNotAllowed
from reapi.http import account, admin, meta, openapi
from reapi.http import chat as chat_http
from reapi.http import tasks as tasks_http
from reapi.http.fast_routes import FastRoutes
from reapi.http.render import renderer_for
from reapi.http.state import Gateway
from reapi.observability.access import AccessLog
from reapi.observability.metrics import Metrics
from reapi.observability.readiness import Readiness
from reapi.providers.llamacpp.channels import LocalServers
from reapi.reload import Reloadable
from reapi.services.billing import BillingService
from reapi.services.calls import new_request_id
from reapi.services.chat import ChatService
from reapi.services.demo import demo_config
from reapi.services.keys import KeyService
from reapi.services.limits import Limiter, LocalLimiter, RedisLimiter
from reapi.services.routing import Router
from reapi.services.upstream import UpstreamClient
from reapi.settings import Settings
from reapi.storage.db import Database
from reapi.storage.hot_ledger import hot_ledger_for
from reapi.web import routes as web_routes
from reapi.worker.runtime import TaskRuntime

log = logging.getLogger("reapi")


def create_app(settings: Settings, config: Config | None = None) -> FastRoutes:
    if config is None:
        config = (
            demo_config() if settings.demo else load_config(settings.config_path, settings.environ)
        )

    for retired in settings.retired_variables:
        log.warning("%s", retired)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        local = LocalServers()
        channels = await local.start(config.channels)
        db = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )
        keys = KeyService(db, cache_seconds=settings.key_cache_seconds)
        metrics = Metrics(
            set(config.chat_models),
            node=settings.node_id,
            workers=settings.workers,
            multiprocess_dir=settings.metrics_dir,
        )
        limiter = _limiter(settings)
        hot = hot_ledger_for(
            settings.database_url,
            synchronous_commit=settings.pg_synchronous_commit,
            pool_size=settings.hot_pool_size,
        )
        await hot.start()
        billing = BillingService(
            db,
            limiter,
            node_id=settings.node_id,
            hold_cap=config.billing.hold_cap_usd,
            owner_timeout=settings.hold_owner_timeout,
            hold_max_age=settings.hold_max_age,
            settle_retry_delay=settings.settle_retry_delay,
            hot=hot,
        )
        await billing.heartbeat()
        await billing.recover_orphans()
        app.state.tasks = tasks = await TaskRuntime.start(settings, config, db, keys)
        app.state.gateway = Gateway(
            settings=settings,
            config=config,
            keys=keys,
            chat=ChatService(
                config,
                Router(channels),
                UpstreamClient(session, settings.upstream_total_timeout or None),
                billing,
            ),
            billing=billing,
            metrics=metrics,
            access=AccessLog(metrics),
            local=local,
            readiness=Readiness(
                {"database": db.ping, "redis": limiter.ping}
                if settings.redis_url
                else {"database": db.ping}
            ),
        )
        jobs = [
            asyncio.create_task(_every(60.0, keys.flush_last_used)),
            asyncio.create_task(_every(settings.hold_owner_timeout / 6, billing.heartbeat)),
            asyncio.create_task(_every(settings.hold_owner_timeout / 2, billing.recover_orphans)),
        ]
        # Everything built so far lives as long as the process: keep the collector from
        # walking it again on every full collection (fewer, shorter GC pauses on the hot path).
        gc.freeze()
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            await tasks.stop()
            await billing.drain()
            await billing.retire()
            await hot.close()
            await keys.flush_last_used()
            await limiter.close()
            await session.close()
            await db.dispose()
            await local.stop()
            metrics.close()

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if tasks_http.owns(request):
            return tasks_http.http_error(request, exc)
        render = renderer_for(request.url.path)
        return render(GatewayError("The gateway failed unexpectedly."), new_request_id())

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette's Allow names the methods of the first route on the path only.
            allowed = _allowed_methods(routes, request)
            headers["Allow"] = ", ".join(allowed)
            exc = HTTPException(405, exc.detail, headers)
        if tasks_http.owns(request):
            return tasks_http.http_error(request, exc)
        if exc.status_code == 404:
            return await meta.not_found(request, exc)
        if exc.status_code == 405:
            takes = " or ".join(m for m in allowed if m != "HEAD")
            error: GatewayError = MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}; it takes {takes}.",
                headers=headers,
            )
        else:
            error = GatewayError(str(exc.detail), code="http_error", headers=headers)
            error.status = exc.status_code
            error.openai_type = error.anthropic_type = "invalid_request_error"
        return renderer_for(request.url.path)(error, new_request_id())

    routes: list[BaseRoute] = [
        Route("/v1/chat/completions", chat_http.chat_completions, methods=["POST"]),
        Route("/v1/messages", chat_http.messages, methods=["POST"]),
        Route("/v1/responses", chat_http.responses, methods=["POST"]),
        Route("/v1/responses", chat_http.responses_get, methods=["GET"]),
        Route("/v1/messages/count_tokens", chat_http.count_tokens, methods=["POST"]),
        Route("/api/hello", chat_http.warm_up, methods=["HEAD", "GET"]),
        Route("/v1/models", meta.list_models, methods=["GET"]),
        Route("/healthz", meta.healthz, methods=["GET"]),
        Route("/readyz", meta.readyz, methods=["GET"]),
        Route("/metrics", meta.metrics, methods=["GET"]),
        Route("/openapi.json", openapi.endpoint(openapi.build()), methods=["GET"]),
        *account.routes,
        *admin.routes,
        *tasks_http.routes(),
        *web_routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    return FastRoutes(
        app,
        {
            "/v1/chat/completions": chat_http.chat_completions,
            "/v1/messages": chat_http.messages,
            "/v1/responses": chat_http.responses,
        },
    )


def _allowed_methods(routes: list[BaseRoute], request: Request) -> list[str]:
    methods: set[str] = set()
    for route in routes:
        if (
            isinstance(route, Route)
            and route.methods
            and route.matches(request.scope)[0] is not Match.NONE
        ):
            methods |= route.methods
    return sorted(methods)


def _limiter(settings: Settings) -> Limiter:
    if settings.redis_url:
        import redis.asyncio as redis

        return RedisLimiter(
            redis.from_url(settings.redis_url), prefix=settings.redis_prefix + "rl:"
        )
    return LocalLimiter(share=settings.workers)


async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:
            log.exception("background job failed; will try again")


def app_from_environment() -> FastRoutes | Reloadable:
    """Factory for ``uvicorn --factory`` and ``reapi serve`` workers."""
    settings = Settings.from_env()
    if settings.workers == 1 and not settings.demo:
        # One process reloads its config in place on SIGHUP; workers are replaced by their
        # supervisor instead (reapi.supervisor).
        return Reloadable(settings, create_app)
    return create_app(settings)
