"""The rig's own load generator, for what wrk cannot do: open-loop fixed-rate
latency, and hundreds of concurrent SSE streams with per-chunk timing.

Written on raw asyncio protocols (uvloop, httptools) so that the client stays
far below the systems it measures; `run.py` checks that by pointing it at the
mock directly. Prints one JSON object with the results.

  rate:   send REQUESTS/s for DURATION s, each on an idle keep-alive connection
          (a new one when none is idle); latency runs from the moment a request
          is issued to its last byte.
  stream: hold N workers that each open a stream, read it to the end and open
          the next one; TTFT runs from the write to the first body byte, and a
          gap between two reads longer than --stall-ms counts as a stall.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httptools
import uvloop
from fixtures import request_body

now = time.perf_counter


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self, on_lost: Callable[[_Conn], None]) -> None:
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[None] | None = None
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.t_first = 0.0
        self.t_last = 0.0
        self.max_gap = 0.0
        self.nbytes = 0
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.done and not self.done.done():
            self.done.set_exception(ConnectionError("connection lost"))
        self.on_lost(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.done and not self.done.done():
                self.done.set_exception(exc)
            if self.transport:
                self.transport.close()

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        t = now()
        if self.t_first:
            self.max_gap = max(self.max_gap, t - self.t_last)
        else:
            self.t_first = t
        self.t_last = t
        self.nbytes += len(body)

    def on_message_complete(self) -> None:
        if self.done and not self.done.done():
            self.done.set_result(None)

    async def send(self, raw: bytes) -> None:
        self.reset()
        self.done = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(raw)
        await self.done
        if not self.keep_alive and self.transport:
            self.transport.close()


class _Pool:
    """Keep-alive connections, at most `limit` of them; past that, requests wait
    for a free one (and that wait counts in their latency, as it would for a
    real client)."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[_Conn] = []
        self.waiters: list[asyncio.Future[_Conn]] = []
        self.handing: set[asyncio.Future[None]] = set()
        self.live = 0
        self.opened = 0

    def _lost(self, conn: _Conn) -> None:
        self.live -= 1
        if conn in self.idle:
            self.idle.remove(conn)

    async def get(self) -> _Conn:
        while self.idle:
            conn = self.idle.pop()
            if conn.transport is not None:
                return conn
        if self.live >= self.limit:
            fut: asyncio.Future[_Conn] = asyncio.get_running_loop().create_future()
            self.waiters.append(fut)
            return await fut
        self.live += 1
        self.opened += 1
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Conn(self._lost), self.host, self.port)
        except OSError:
            self.live -= 1
            raise
        return conn

    def put(self, conn: _Conn | None) -> None:
        if conn is None or conn.transport is None:
            if self.waiters:  # a slot freed up: let the next waiter connect
                task = asyncio.ensure_future(self._hand_new(self.waiters.pop(0)))
                self.handing.add(task)
                task.add_done_callback(self.handing.discard)
            return
        if self.waiters:
            self.waiters.pop(0).set_result(conn)
        else:
            self.idle.append(conn)

    async def _hand_new(self, fut: asyncio.Future[_Conn]) -> None:
        try:
            fut.set_result(await self.get())
        except OSError as exc:
            fut.set_exception(exc)


def _raw_request(url: str, body: bytes, key: str | None) -> tuple[str, int, bytes]:
    u = urlsplit(url)
    auth = f"authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST {u.path} HTTP/1.1\r\nhost: {u.netloc}\r\ncontent-type: application/json\r\n"
        f"accept: */*\r\n{auth}content-length: {len(body)}\r\n\r\n"
    )
    return u.hostname or "127.0.0.1", u.port or 80, head.encode() + body


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 3)


async def run_rate(args: argparse.Namespace) -> dict[str, object]:
    host, port, raw = _raw_request(args.url, request_body(args.model), args.key)
    pool = _Pool(host, port, args.max_conns)
    lat: list[float] = []
    errors = 0
    pending: set[asyncio.Task[None]] = set()

    async def one(t_issue: float) -> None:
        nonlocal errors
        conn = None
        try:
            conn = await pool.get()
            await conn.send(raw)
            if conn.status != 200:
                errors += 1
            else:
                lat.append(now() - t_issue)
        except (OSError, httptools.HttpParserError):
            errors += 1
        pool.put(conn)

    total = int(args.rate * args.duration)
    t0 = now()
    sent = 0
    while sent < total:
        t = now()
        due = min(total, int((t - t0) * args.rate) + 1)
        while sent < due:
            task = asyncio.create_task(one(t))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        next_at = t0 + sent / args.rate
        await asyncio.sleep(max(0.0, next_at - now()))
    send_window = now() - t0
    if pending:
        await asyncio.wait(pending, timeout=args.timeout)
    elapsed = now() - t0
    return {
        "mode": "rate",
        "target_rps": args.rate,
        "sent": sent,
        "ok": len(lat),
        "errors": errors,
        "unfinished": sum(1 for t in pending if not t.done()),
        "offered_rps": round(sent / send_window, 1),
        "achieved_rps": round(len(lat) / elapsed, 1),
        "connections": pool.opened,
        "p50_ms": _ms(_pct(lat, 50)),
        "p90_ms": _ms(_pct(lat, 90)),
        "p99_ms": _ms(_pct(lat, 99)),
        "max_ms": _ms(max(lat) if lat else None),
    }


async def run_stream(args: argparse.Namespace) -> dict[str, object]:
    host, port, raw = _raw_request(args.url, request_body(args.model, stream=True), args.key)
    pool = _Pool(host, port, args.concurrency)
    ttft: list[float] = []
    gaps: list[float] = []
    errors = stalls = streams = 0
    short = 0
    expected_bytes = 0
    deadline = now() + args.duration
    stall_s = args.stall_ms / 1000

    async def worker(delay: float) -> None:
        nonlocal errors, stalls, streams, short, expected_bytes
        await asyncio.sleep(delay)
        while now() < deadline:
            conn = None
            try:
                conn = await pool.get()
                t_write = now()
                await asyncio.wait_for(conn.send(raw), args.timeout)
            except (OSError, TimeoutError, httptools.HttpParserError):
                errors += 1
                if conn and conn.transport:
                    conn.transport.close()
                    conn.transport = None
                pool.put(conn)
                await asyncio.sleep(0.05)
                continue
            if conn.status != 200 or not conn.t_first:
                errors += 1
                pool.put(conn)
                continue
            streams += 1
            expected_bytes = max(expected_bytes, conn.nbytes)
            if conn.nbytes < expected_bytes * 0.9:
                short += 1
            ttft.append(conn.t_first - t_write)
            gaps.append(conn.max_gap)
            if conn.max_gap > stall_s:
                stalls += 1
            pool.put(conn)

    ramp = min(args.ramp, args.duration / 2)
    workers = [worker(ramp * i / args.concurrency) for i in range(args.concurrency)]
    await asyncio.gather(*workers)
    return {
        "mode": "stream",
        "concurrency": args.concurrency,
        "streams": streams,
        "errors": errors,
        "stalls": stalls,
        "short_streams": short,
        "connections": pool.opened,
        "ttft_p50_ms": _ms(_pct(ttft, 50)),
        "ttft_p99_ms": _ms(_pct(ttft, 99)),
        "gap_p99_ms": _ms(_pct(gaps, 99)),
        "gap_max_ms": _ms(max(gaps) if gaps else None),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["rate", "stream"])
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--key")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--rate", type=float, default=100, help="rate mode: requests per second")
    ap.add_argument("--max-conns", type=int, default=128, help="rate mode: connection cap")
    ap.add_argument("--concurrency", type=int, default=1, help="stream mode: concurrent streams")
    ap.add_argument("--ramp", type=float, default=2.0, help="stream mode: stagger worker starts")
    ap.add_argument("--stall-ms", type=float, default=100.0)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    fn = run_rate if args.mode == "rate" else run_stream
    print(json.dumps(uvloop.run(fn(args))))


if __name__ == "__main__":
    main()
