"""The connection edge (reapi.http.edge) and the body limit: request heads are bounded in size,
heads and bodies in time, and a body over the limit is refused in the route's own envelope
without being read whole. Raw sockets, since an HTTP client cannot send a broken request."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from reapi.services.keys import KeyService
from reapi.settings import Settings
from reapi.storage.db import Database
from tests.conftest import Gateway, gateway_config, start_gateway, unique
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_process import GatewayProcess

LIMITS: dict[str, Any] = {
    "max_header_bytes": 8192,
    "header_timeout": 1.0,
    "body_timeout": 1.0,
    "max_request_bytes": 64 * 1024,
}
CHAT = b'{"model": "gpt-5.5", "messages": [{"role": "user", "content": "Hello"}]}'


@pytest.fixture(scope="module")
def edge(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Gateway]:
    gateway = start_gateway(
        Settings(database_url=database_url, **LIMITS), gateway_config(fake_openai.base_url)
    )
    yield gateway
    gateway.server.stop()


def connect(port: int) -> socket.socket:
    # The timeout only ends a test whose server never answers or never closes; it is no
    # measure of how fast it does.
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (sized by Content-Length) read off ``sock``, leaving the connection open."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a whole response: {raw!r}"
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of a response body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def parse(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, orjson.loads(body)


def post_head(path: str, key: str, length: int | None, extra: str = "") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\n{size}{extra}\r\n"
    ).encode()


# Request heads ------------------------------------------------------------------------------


def test_a_head_over_the_limit_is_431_and_closed(edge: Gateway) -> None:
    with connect(edge.server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        status, headers, body = parse(until_closed(sock))
    assert status == 431
    assert headers["connection"] == "close"
    assert headers["x-request-id"].startswith("req_")
    assert body["error"]["code"] == "request_header_too_large"
    assert "8192 bytes" in body["error"]["message"]


def test_an_unfinished_head_over_the_limit_is_431_and_closed(edge: Gateway) -> None:
    with connect(edge.server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000)
        status, _, body = parse(until_closed(sock))
    assert status == 431
    assert body["error"]["code"] == "request_header_too_large"


def test_a_16_mib_header_is_cut_off_early(edge: Gateway) -> None:
    sent = 0
    with connect(edge.server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        piece = b"a" * 65536
        try:
            while sent < 16 * 1024 * 1024:
                sock.sendall(piece)
                sent += len(piece)
        except OSError:
            pass  # the gateway closed the connection while the header was still coming
        try:
            answer = until_closed(sock)
        except ConnectionResetError:
            answer = b""  # the close may overtake the answer's delivery; the cut is what counts
    assert sent < 16 * 1024 * 1024
    if answer:
        assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_head_under_the_limit_is_served(edge: Gateway) -> None:
    with connect(edge.server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 6000 + b"\r\n\r\n")
        status, _, _ = response(sock)
    assert status == 200


# Time to receive a request ------------------------------------------------------------------


def test_an_unfinished_head_is_408_and_closed_after_the_header_timeout(edge: Gateway) -> None:
    with connect(edge.server.port) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: abc")
        status, headers, body = parse(until_closed(sock))
    assert status == 408
    assert headers["connection"] == "close"
    assert "headers did not arrive within 1 s" in body["error"]["message"]


def test_a_connection_that_sends_nothing_is_closed(edge: Gateway) -> None:
    with connect(edge.server.port) as sock:
        assert until_closed(sock) == b""


def test_a_body_shorter_than_its_length_is_408_and_closed(
    edge: Gateway, upstream: FakeOpenAI
) -> None:
    with connect(edge.server.port) as sock:
        sock.sendall(post_head("/v1/chat/completions", edge.key(), len(CHAT)) + CHAT[:20])
        status, _, body = parse(until_closed(sock))
    assert status == 408
    assert "body did not arrive within 1 s" in body["error"]["message"]
    assert upstream.requests == []


def test_a_body_in_pieces_is_served_and_the_connection_reused(
    edge: Gateway, upstream: FakeOpenAI
) -> None:
    key = edge.key()
    with connect(edge.server.port) as sock:
        sock.sendall(post_head("/v1/chat/completions", key, len(CHAT)))
        time.sleep(0.1)
        sock.sendall(CHAT[:30])
        time.sleep(0.1)
        sock.sendall(CHAT[30:])
        status, _, body = response(sock)
        assert status == 200, body
        # Longer than both time limits: an idle keep-alive connection owes no request.
        time.sleep(1.5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = response(sock)
    assert status == 200
    assert len(upstream.requests) == 1


# Body size ----------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_413_before_the_body_openai(edge: Gateway) -> None:
    with connect(edge.server.port) as sock:
        # Only the head is sent: the answer must not wait for the body.
        sock.sendall(post_head("/v1/chat/completions", edge.key(), 64 * 1024 + 1))
        status, headers, raw = response(sock)
    assert status == 413
    assert headers["x-request-id"].startswith("req_")
    error = orjson.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "request_too_large"
    assert "65536 bytes" in error["message"]


def test_a_declared_length_over_the_limit_is_413_before_the_body_anthropic(edge: Gateway) -> None:
    with connect(edge.server.port) as sock:
        sock.sendall(post_head("/v1/messages", edge.key(), 10**9))
        status, _, raw = response(sock)
    assert status == 413
    answer = orjson.loads(raw)
    assert answer["type"] == "error"
    assert answer["error"]["type"] == "request_too_large"


def test_a_declared_length_over_the_limit_is_413_before_the_body_tasks(edge: Gateway) -> None:
    async def tasks_key() -> str:
        db = Database(edge.settings.database_url)
        try:
            keys = KeyService(db)
            user = await keys.create_user(unique("edge"))
            return (await keys.create_key(user.name, workspace="tasks")).secret
        finally:
            await db.dispose()

    key = asyncio.run(tasks_key())
    with connect(edge.server.port) as sock:
        sock.sendall(post_head("/api/v1/images/generations", key, 64 * 1024 + 1))
        status, _, raw = response(sock)
    assert status == 413
    error = orjson.loads(raw)["error"]
    assert error["code"] == 20021
    assert error["request_id"].startswith("req_")


def test_a_chunked_body_is_refused_once_past_the_limit(edge: Gateway, upstream: FakeOpenAI) -> None:
    piece = b"x" * 16384
    with connect(edge.server.port) as sock:
        sock.sendall(
            post_head("/v1/chat/completions", edge.key(), None, "Transfer-Encoding: chunked\r\n")
        )
        # 80 KiB of a body that never ends: the answer cannot be waiting for its end.
        for _ in range(5):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        status, _, raw = response(sock)
    assert status == 413
    assert orjson.loads(raw)["error"]["code"] == "request_too_large"
    assert upstream.requests == []


# Memory --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[GatewayProcess]:
    """``reapi serve`` as operators run it, with two limits set through the environment."""
    config = tmp_path_factory.mktemp("edge") / "reapi.yaml"
    config.write_text("channels: []\n")
    gateway = GatewayProcess(
        config, database_url, REAPI_MAX_HEADER_BYTES="16384", REAPI_HEADER_TIMEOUT="1"
    ).start()
    yield gateway
    gateway.stop()


def test_reapi_serve_takes_the_limits_from_the_environment(served: GatewayProcess) -> None:
    with connect(served.port) as sock:
        # Under the 64 KiB default, over the 16 KiB set.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        status, _, body = parse(until_closed(sock))
    assert status == 431
    assert "16384 bytes (REAPI_MAX_HEADER_BYTES)" in body["error"]["message"]
    with connect(served.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        status, _, body = parse(until_closed(sock))
    assert status == 408
    assert "within 1 s" in body["error"]["message"]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_huge_unfinished_headers_leave_memory_flat(served: GatewayProcess) -> None:
    """Several unauthenticated connections each trying to send a 16 MiB header: the gateway's
    resident memory barely moves."""
    assert served.process is not None
    pid = served.process.pid
    before = _rss_mb(pid)
    socks = [connect(served.port) for _ in range(6)]
    for sock in socks:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    piece = b"a" * 65536
    open_socks = list(socks)
    for _ in range(16 * 1024 * 1024 // len(piece)):
        for sock in list(open_socks):
            try:
                sock.sendall(piece)
            except OSError:
                open_socks.remove(sock)
        if not open_socks:
            break
    after = _rss_mb(pid)
    for sock in socks:
        sock.close()
    # Without the limit, 6 x 16 MiB sit in the parser; with it, at most a read's worth each.
    assert after - before < 24, (before, after)
    assert not open_socks, "the gateway kept reading a 16 MiB header"
