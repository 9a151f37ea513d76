"""``GET /readyz``: can this process serve a billed call now?

Liveness (``/healthz``) only says the process answers; readiness also asks the stores a call
needs: the database (every call is held and settled there) and, when one is configured, Redis
(shared rate limits). Each check is bounded in time, so a store that hangs makes the node
unready instead of making the probe hang. The probe is unauthenticated: its answer names the
store that failed, and only the log says how (addresses and driver messages stay inside).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

CHECK_SECONDS = 2.0

log = logging.getLogger("reapi")


class Readiness:
    def __init__(self, checks: Mapping[str, Callable[[], Awaitable[object]]]) -> None:
        self._checks = dict(checks)

    async def check(self) -> dict[str, str]:
        """Each store's state: ``ok``, or why it failed."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._one(name, self._checks[name]) for name in names))
        return dict(zip(names, results, strict=True))

    @staticmethod
    async def _one(name: str, check: Callable[[], Awaitable[object]]) -> str:
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                await check()
        except TimeoutError:
            log.warning("readiness: %s did not answer within %g s", name, CHECK_SECONDS)
            return "timeout"
        except Exception as exc:  # any failure of the store is the answer, not an error
            log.warning("readiness: %s failed: %s: %s", name, type(exc).__name__, exc)
            return "failed"
        return "ok"
