"""Process settings. The only module that reads the environment.

Everything else receives a ``Settings`` (or values taken from it) from ``create_app`` or the CLI,
so tests can build any configuration without touching ``os.environ``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///reapi.db"


_RETIRED = {
    "REAPI_UPSTREAM_READ_TIMEOUT": "set each channel's timeouts (first_byte, between_chunks) in "
    "the config (docs/configuration.md)",
}


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    # Every Redis key the gateway writes starts with this, so deployments can share a server.
    redis_prefix: str = "reapi:"
    config_path: Path | None = None
    admin_token: str | None = None
    node_id: str = field(default_factory=socket.gethostname)
    log_level: str = "INFO"
    # Keys are re-read from the database at most this often, so a revocation made by another
    # process (the CLI, another node) takes effect within this many seconds everywhere.
    key_cache_seconds: float = 1.0
    # Task upstreams only: each chat channel has its own ``timeouts`` in the config file.
    upstream_connect_timeout: float = 10.0
    # A whole upstream call's limit; 0 means none for chat (a channel's first-byte and
    # between-chunks limits still end a silent upstream, and it saves a timer per call) and an
    # hour for a task call.
    upstream_total_timeout: float = 0.0
    # The client side of each connection (reapi.http.edge): a request's body, its head (request
    # line and headers), and the time a head and then a body may take to arrive. A legitimate
    # head is a few KB; 64 KiB leaves room for long tokens and many beta headers.
    max_request_bytes: int = 32 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    # 32 MiB in 60 s needs ~4.5 Mbit/s from the client: raise it for big uploads on slow links.
    body_timeout: float = 60.0
    # A gateway process that has not heartbeaten for this long is considered dead, and the
    # holds it placed are released by any live process.
    hold_owner_timeout: float = 30.0
    # `reapi ledger verify` reports a hold older than this as a failure: no call runs this
    # long, so such a hold is one a settlement left behind.
    hold_max_age: float = 7200.0
    # The first wait before retrying a settlement the store refused (then doubling).
    settle_retry_delay: float = 0.5
    # Worker processes of this server (reapi serve --workers): without Redis, each enforces
    # its share of every rate limit.
    workers: int = 1
    # PostgreSQL: wait for the WAL flush on each hold and settlement commit. Off by default:
    # it costs a disk flush per commit, and what it protects against is a crash of the
    # database server itself (see docs/billing.md).
    pg_synchronous_commit: bool = False
    # PostgreSQL connections per process, in three pools: the ORM engine's (keys, operator
    # pages, tasks; ``db_pool_size`` kept open plus ``db_max_overflow`` opened under load) and
    # the hot ledger's (holds and settlements). The defaults let three nodes of two workers and
    # two task workers share PostgreSQL's default 100 connections (docs/deployment.md).
    db_pool_size: int = 3
    db_max_overflow: int = 2
    hot_pool_size: int = 8
    # On SIGTERM: how long calls in flight (streams included) may run on before they are cut
    # (and settled as cut calls are, docs/billing.md).
    shutdown_timeout: int = 30
    # Set by ``reapi serve --workers N`` (N > 1): the directory where the workers' Prometheus
    # metrics meet, so /metrics adds up the whole process group.
    metrics_dir: Path | None = None
    # Serve the local demo model with no config file (reapi serve --demo).
    demo: bool = False
    # The address ``reapi serve`` listens on, as a URL: what the docs pages print when the
    # config sets no public_url.
    listen_url: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def retired_variables(self) -> list[str]:
        """Variables set in the environment that this version no longer reads, with what
        replaced them: said at startup, so an operator does not rely on them unknowingly."""
        return [
            f"{name} is no longer read: {instead}"
            for name, instead in _RETIRED.items()
            if name in self.environ
        ]

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_header_bytes", "header_timeout", "body_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be greater than 0, got {getattr(self, name)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {"environ": env}
        if url := env.get("REAPI_DATABASE_URL"):
            values["database_url"] = url
        if url := env.get("REAPI_REDIS_URL"):
            values["redis_url"] = url
        if prefix := env.get("REAPI_REDIS_PREFIX"):
            values["redis_prefix"] = prefix
        if path := env.get("REAPI_CONFIG"):
            values["config_path"] = Path(path)
        if token := env.get("REAPI_ADMIN_TOKEN"):
            values["admin_token"] = token
        if node := env.get("REAPI_NODE_ID"):
            values["node_id"] = node
        if level := env.get("REAPI_LOG_LEVEL"):
            values["log_level"] = level.upper()
        for name, key in (
            ("key_cache_seconds", "REAPI_KEY_CACHE_SECONDS"),
            ("upstream_connect_timeout", "REAPI_UPSTREAM_CONNECT_TIMEOUT"),
            ("upstream_total_timeout", "REAPI_UPSTREAM_TOTAL_TIMEOUT"),
            ("hold_owner_timeout", "REAPI_HOLD_OWNER_TIMEOUT"),
            ("hold_max_age", "REAPI_HOLD_MAX_AGE"),
            ("header_timeout", "REAPI_HEADER_TIMEOUT"),
            ("body_timeout", "REAPI_BODY_TIMEOUT"),
        ):
            if raw := env.get(key):
                values[name] = float(raw)
        for name, key in (
            ("max_request_bytes", "REAPI_MAX_REQUEST_BYTES"),
            ("max_header_bytes", "REAPI_MAX_HEADER_BYTES"),
        ):
            if raw := env.get(key):
                values[name] = int(raw)
        if env.get("REAPI_PG_SYNCHRONOUS_COMMIT", "").lower() in ("1", "on", "true", "yes"):
            values["pg_synchronous_commit"] = True
        if env.get("REAPI_DEMO") == "1":
            values["demo"] = True
        if raw := env.get("REAPI_WORKERS"):
            values["workers"] = int(raw)
        if url := env.get("REAPI_LISTEN_URL"):
            values["listen_url"] = url.rstrip("/")
        for name, key in (
            ("db_pool_size", "REAPI_DB_POOL_SIZE"),
            ("db_max_overflow", "REAPI_DB_MAX_OVERFLOW"),
            ("hot_pool_size", "REAPI_HOT_POOL_SIZE"),
            ("shutdown_timeout", "REAPI_SHUTDOWN_TIMEOUT"),
        ):
            if raw := env.get(key):
                number = int(raw)
                if number < (1 if name.endswith("pool_size") else 0):
                    raise ValueError(f"{key} is too small: {raw}")
                values[name] = number
        # The name prometheus_client itself reads in the workers.
        if path := env.get("PROMETHEUS_MULTIPROC_DIR"):
            values["metrics_dir"] = Path(path)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
