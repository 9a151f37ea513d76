"""Prometheus metrics, on a registry owned by the app (no module-level collectors).

Labels are bounded: model names come from the configured catalog (others count as "other"),
endpoints and outcomes from fixed sets, so a client cannot grow the series count.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
    def __init__(self, known_models: set[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._known = known_models
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
            "reapi_requests_in_flight", "Customer calls being served now.", registry=self.registry
        )

    def model_label(self, model: str | None) -> str:
        if model is None:
            return "none"
        return model if model in self._known else "other"
