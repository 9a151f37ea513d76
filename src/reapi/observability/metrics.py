"""Prometheus metrics, on a registry owned by the app (no module-level collectors).

Labels are bounded: model names come from the configured catalog (others count as "other"),
endpoints and outcomes from fixed sets, so a client cannot grow the series count.

Under ``reapi serve --workers N`` each worker is its own process: the server sets
``PROMETHEUS_MULTIPROC_DIR`` (``Settings.metrics_dir``) before starting them, prometheus_client
then keeps every value in a file there, and ``/metrics`` (answered by whichever worker the
connection reached) adds up the files of the whole process group. One process keeps its values
in memory as before. Either way ``reapi_node_info`` names the node, so series from several
nodes can be told apart.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
)


class Metrics:
    def __init__(
        self,
        known_models: set[str],
        *,
        node: str = "",
        workers: int = 1,
        multiprocess_dir: Path | None = None,
    ) -> None:
        # Where this process's collectors live; ``exposition`` is what /metrics renders.
        self.registry = CollectorRegistry(auto_describe=True)
        self._known = known_models
        self._multiprocess_dir = multiprocess_dir
        self.requests = Counter(
            "reapi_requests",
            "Customer calls by endpoint, model, HTTP status and outcome.",
            ["endpoint", "model", "status", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "reapi_request_duration_seconds",
            "Whole customer call, from the first byte received to the last byte sent.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttfb = Histogram(
            "reapi_upstream_first_byte_seconds",
            "From the start of the call to the first byte of the upstream's answer.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "reapi_tokens",
            "Tokens reported by upstreams, by model and kind (prompt, completion, cached).",
            ["model", "kind"],
            registry=self.registry,
        )
        self.usage_replaced = Counter(
            "reapi_usage_replaced",
            "Calls whose upstream usage was not billed as reported, by reason (missing, "
            "malformed, out_of_bounds, cost_capped): docs/billing.md.",
            ["model", "reason"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "reapi_requests_in_flight",
            "Customer calls being served now.",
            registry=self.registry,
            # Across workers: the sum over the processes still running.
            multiprocess_mode="livesum",
        )
        if multiprocess_dir is None:
            self.exposition = self.registry
        else:
            self.exposition = CollectorRegistry()
            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                self.exposition, path=str(multiprocess_dir)
            )
        self.exposition.register(_NodeInfo(node, workers))

    def close(self) -> None:
        """This process is stopping: its live gauges leave the group's sums (its counters
        stay, so the group's totals never go down)."""
        if self._multiprocess_dir is not None:
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                os.getpid(), str(self._multiprocess_dir)
            )

    def model_label(self, model: str | None) -> str:
        if model is None:
            return "none"
        return model if model in self._known else "other"


class _NodeInfo(Collector):
    """``reapi_node_info{node, workers} 1``: computed when scraped, so it needs no shared file."""

    def __init__(self, node: str, workers: int) -> None:
        self._node = node
        self._workers = str(workers)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily(
            "reapi_node_info",
            "This gateway node (REAPI_NODE_ID) and its worker processes; always 1.",
            labels=["node", "workers"],
        )
        info.add_metric([self._node, self._workers], 1)
        yield info
