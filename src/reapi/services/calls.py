"""The record of one customer call, filled in as the call moves through the gateway.

It is what the access log line, the metrics and (with billing) the usage record are made from,
so every field here is safe to log: ids, names, numbers. Never a key, never prompt text.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reapi.protocols.usage import Usage

if TYPE_CHECKING:
    from reapi.services.billing import Ticket


def new_request_id() -> str:
    """``req_`` + 48 bits of milliseconds + 80 random bits, in hex.

    Time-ordered ids keep the tables keyed by request id (holds, usage records, the ledger's
    unique index) appending at the end of their B-trees instead of touching random pages on
    every insert, which is most of what a commit writes; 80 random bits keep them unguessable.
    """
    return f"req_{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


@dataclass(slots=True)
class CallRecord:
    endpoint: str
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    key_id: str | None = None
    user_id: int | None = None
    user: str | None = None
    model: str | None = None
    group: str | None = None
    channel: str | None = None
    stream: bool = False
    status: int = 0
    # "ok", or why the call did not complete normally (see docs/billing.md for how each is billed).
    outcome: str = "pending"
    error_code: str | None = None
    ttfb: float | None = None
    usage: Usage | None = None
    usage_estimated: bool = False
    # Why the upstream's usage was not billed as reported ("missing", "malformed",
    # "out_of_bounds", "cost_capped"), for the log line and the metric.
    usage_replaced: str | None = None
    output_chars: int = 0
    billing: Ticket | None = None
    closed: bool = False
    cost: int = 0

    def mark_first_byte(self) -> None:
        if self.ttfb is None:
            self.ttfb = time.perf_counter() - self.started

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
