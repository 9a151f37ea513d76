"""One structured log line and the metrics for each finished call.

The line carries ids, names and numbers only: the ``CallRecord`` holds nothing else, so keys
and prompt text cannot reach the log by construction.
"""

from __future__ import annotations

import logging

import orjson

from reapi.observability.metrics import Metrics
from reapi.services.calls import CallRecord

log = logging.getLogger("reapi.access")


class AccessLog:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def start(self, call: CallRecord) -> None:
        self._metrics.in_flight.inc()

    def finish(self, call: CallRecord) -> None:
        self._metrics.in_flight.dec()
        elapsed = call.elapsed()
        model = self._metrics.model_label(call.model)
        self._metrics.requests.labels(call.endpoint, model, str(call.status), call.outcome).inc()
        self._metrics.duration.labels(call.endpoint).observe(elapsed)
        if call.ttfb is not None:
            self._metrics.ttfb.labels(call.endpoint).observe(call.ttfb)
        usage = call.usage
        if usage is not None:
            self._metrics.tokens.labels(model, "prompt").inc(usage.prompt_tokens)
            self._metrics.tokens.labels(model, "completion").inc(usage.completion_tokens)
            if usage.cached_tokens:
                self._metrics.tokens.labels(model, "cached").inc(usage.cached_tokens)
        if call.usage_replaced is not None:
            self._metrics.usage_replaced.labels(model, call.usage_replaced).inc()
        if not log.isEnabledFor(logging.INFO):
            return
        record = {
            "request_id": call.request_id,
            "endpoint": call.endpoint,
            "key_id": call.key_id,
            "user": call.user,
            "model": call.model,
            "group": call.group,
            "channel": call.channel,
            "stream": call.stream,
            "status": call.status,
            "outcome": call.outcome,
            "error_code": call.error_code,
            "latency_ms": round(elapsed * 1000, 2),
            "ttfb_ms": None if call.ttfb is None else round(call.ttfb * 1000, 2),
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "cached_tokens": usage.cached_tokens if usage else None,
            "usage_replaced": call.usage_replaced,
        }
        log.info(orjson.dumps(record).decode())
