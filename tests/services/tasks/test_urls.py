import ipaddress

import aiohttp
import pytest

from reapi.protocols.tasks import TaskError, TaskErrorCode
from reapi.services.tasks.urls import (
    STRICT,
    StaticResolver,
    UrlPolicy,
    check_url,
    check_url_syntax,
    guarded_connector,
    is_public_address,
    parse_ip_literal,
)
from tests.fakes.task_upstreams import PNG_1X1, Behaviour, FakeFalQueue

PRIVATE = TaskErrorCode.PRIVATE_ADDRESS_REJECTED


def code_of(url: object, policy: UrlPolicy = STRICT) -> TaskErrorCode:
    with pytest.raises(TaskError) as info:
        check_url_syntax(url, policy, param="image_urls.0")
    assert info.value.param == "image_urls.0"
    return info.value.code


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://127.1/x.png",
        "http://10.0.0.8/x.png",
        "http://172.16.3.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://0.0.0.0/",
        "http://224.0.0.1/",  # multicast
        "http://240.0.0.1/",  # reserved
        "http://[::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://[::ffff:7f00:1]/x.png",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 wrapping 169.254.169.254
        "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
        "http://[::127.0.0.1]/",  # IPv4-compatible (deprecated ::/96)
        "http://[::7f00:1]/",
        "http://[::8.8.8.8]/",  # even wrapping a public address: nothing routes ::/96 today
        "http://[::ffff:0:7f00:1]/",  # SIIT IPv4-translated
        "http://[::ffff:0:127.0.0.1]/",
        "http://[64:ff9b:1::7f00:1]/",  # local-use NAT64
        "http://[64:ff9b::7f00:1]/",  # NAT64 wrapping 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
        "http://[2001:db8::1]/",  # documentation
        "http://[3fff::1]/",  # documentation (RFC 9637)
        "http://[fec0::1]/",  # site-local
        "http://[100::1]/",  # discard-only
        "http://[5f00::1]/",  # SRv6 SIDs
        "http://[::]/",
        "http://[0:0:0:0:0:0:0:1]/",
        "http://[0:0:0:0:0:ffff:7f00:1]/",
        "http://[::FFFF:127.0.0.1]:8080/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "http://0x7f000001/x.png",
        "http://2130706433/x.png",
        "http://0177.0.0.1/x.png",
        "http://0x7f.0.0.1/x.png",
        "http://0X7F.0.0.1/x.png",
        "http://017700000001/x.png",  # octal, one part
        "http://127.0.0.1./x.png",  # trailing dot
        "http://0x7f000001./x.png",
        "http://0/x.png",  # 0.0.0.0
        "http://127.000.000.001/x.png",
        "http://192.88.99.1/",  # 6to4 relay anycast
        "http://198.18.0.1/",  # benchmarking
        "http://255.255.255.255/",
        "http://localhost/x.png",
        "http://LOCALHOST./x.png",
        "http://foo.localhost/x.png",
        "http://printer.local/x.png",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://intranet/x.png",
        "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/x.png",  # full-width digits
        "http://127\u30020\u30020\u30021/x.png",  # ideographic full stops
        "http://LOCALHOST\uff0e/x.png",
    ],
)
def test_private_hosts_are_rejected_without_dns(url: str) -> None:
    assert code_of(url) == PRIVATE


def test_data_urls_are_rejected_with_their_own_code() -> None:
    assert code_of("data:image/png;base64,iVBORw0KGgo=") == TaskErrorCode.DATA_URL_REJECTED
    assert code_of("  DATA:text/plain,hi") == TaskErrorCode.DATA_URL_REJECTED


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://",
        "http://user:pw@example.com/a.png",
        "http://example.com@127.0.0.1/a.png",
        "http://example.com\\@evil/a.png",
        "http://example.com:99999/a.png",
        "http://%31%32%37.0.0.1/a.png",
        "http://[fe80::1%25eth0]/a.png",  # zone ids name this machine's interfaces
        "http://[2606:4700::1111%25eth0]/a.png",
        "http://[2606:4700::1111]x.evil.example/a.png",  # text after "]" that urlsplit drops
        "http://[v1.fe80]/a.png",  # IPvFuture
        "http://[::ffff:127.1]/a.png",
        "http://@127.0.0.1/a.png",  # empty userinfo
        "http://:@example.com/a.png",
        "not a url",
    ],
)
def test_malformed_or_non_http_urls_are_invalid(url: str) -> None:
    assert code_of(url) == TaskErrorCode.INVALID_URL


def test_non_string_url_is_a_type_error() -> None:
    assert code_of(42) == TaskErrorCode.WRONG_TYPE


def test_public_urls_pass_the_text_check() -> None:
    checked = check_url_syntax("https://cdn.example.com/a.png?sig=1")
    assert (checked.host, checked.port, checked.literal) == ("cdn.example.com", 443, None)
    literal = check_url_syntax("http://8.8.8.8:8080/a.png")
    assert literal.literal == ipaddress.IPv4Address("8.8.8.8") and literal.port == 8080


def test_legacy_ipv4_spellings_decode_like_inet_aton() -> None:
    expect = ipaddress.IPv4Address("127.0.0.1")
    for text in ("2130706433", "0x7f000001", "0177.0.0.1", "127.1", "127.0.1", "0x7F.1"):
        assert parse_ip_literal(text) == expect, text
    assert parse_ip_literal("example.com") is None
    assert parse_ip_literal("1.2.3.4.5") is None
    assert parse_ip_literal("256.1.1.1") is None
    assert parse_ip_literal("08.1.1.1") is None  # 8 is not an octal digit
    for text in ("+127.0.0.1", "1_27.0.0.1", "\u0661\u0662\u0667.0.0.1", "0x.0.0.1", "127..1"):
        assert parse_ip_literal(text) is None, text  # int() would take these; inet_aton not


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("2a00:1450:4001::200e", True),
        ("::ffff:8.8.8.8", True),  # IPv4-mapped: judged by the IPv4 address
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::808:808", True),  # NAT64 well-known prefix: judged by the IPv4 address
        ("64:ff9b::a00:1", False),
        ("2002:808:808::1", True),  # 6to4: judged by the IPv4 address
        ("2002:a00:1::1", False),
        ("::8.8.8.8", False),  # IPv4-compatible: refused whatever it carries
        ("::ffff:0:808:808", False),  # SIIT: refused whatever it carries
        ("64:ff9b:1::808:808", False),  # local-use NAT64
        ("2001::1", False),  # Teredo
        ("2001:db8::8", False),
        ("fec0::1", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("ff0e::1", False),  # global-scope multicast
        ("4000::1", False),  # unassigned, outside 2000::/3
        ("100.64.0.1", False),
        ("192.0.0.9", False),
        ("224.0.0.251", False),
        ("239.255.255.250", False),
    ],
)
def test_public_address_classification(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


def test_zone_ids_are_never_public() -> None:
    assert not is_public_address(ipaddress.IPv6Address("2606:4700::1111%eth0"))


def test_allowlist_is_explicit() -> None:
    policy = UrlPolicy.allowing("127.0.0.1", "10.1.0.0/16", "localhost")
    assert check_url_syntax("http://127.0.0.1:9/x", policy).literal is not None
    assert check_url_syntax("http://10.1.2.3/x", policy).literal is not None
    assert code_of("http://10.2.0.1/x", policy) == PRIVATE
    assert check_url_syntax("http://localhost:9/x", policy).host == "localhost"
    assert code_of("http://127.0.0.2/x", policy) == PRIVATE


async def test_names_resolving_to_private_addresses_are_rejected() -> None:
    resolver = StaticResolver(
        {
            "rebind.example.com": ["127.0.0.1"],
            "mixed.example.com": ["93.184.216.34", "10.0.0.1"],
            "v6.example.com": ["::1"],
            "ok.example.com": ["93.184.216.34"],
        }
    )
    for host in ("rebind", "mixed", "v6"):
        with pytest.raises(TaskError) as info:
            await check_url(f"https://{host}.example.com/a.png", resolver=resolver, param="p")
        assert info.value.code == PRIVATE
    ok = await check_url("https://ok.example.com/a.png", resolver=resolver)
    assert ok.addresses == (ipaddress.ip_address("93.184.216.34"),)
    with pytest.raises(TaskError) as info:
        await check_url("https://nowhere.example.com/a.png", resolver=resolver)
    assert info.value.code == TaskErrorCode.UNRESOLVABLE_HOST


async def test_localhost_allowed_by_name_still_needs_its_address_allowed() -> None:
    resolver = StaticResolver({"localhost": ["127.0.0.1"]})
    by_name_only = UrlPolicy.allowing("localhost")
    with pytest.raises(TaskError):
        await check_url("http://localhost/x", by_name_only, resolver=resolver)
    both = UrlPolicy.allowing("localhost", "127.0.0.0/8")
    assert (await check_url("http://localhost/x", both, resolver=resolver)).host == "localhost"


async def test_guarded_connector_refuses_loopback_literals_and_names() -> None:
    async with FakeFalQueue(Behaviour()) as fake:
        port = fake.base_url.rsplit(":", 1)[1]
        job_id = fake.new_job({}).id  # a job so /media has something to serve
        resolver = StaticResolver({"rebind.example.com": ["127.0.0.1"]})
        async with aiohttp.ClientSession(connector=guarded_connector(resolver=resolver)) as s:
            for url in (
                f"http://127.0.0.1:{port}/media/{job_id}/0.png",
                f"http://rebind.example.com:{port}/media/{job_id}/0.png",
                f"http://localhost:{port}/media/{job_id}/0.png",
                # IPv4-mapped reaches 127.0.0.1 through a dual-stack socket.
                f"http://[::ffff:127.0.0.1]:{port}/media/{job_id}/0.png",
                f"http://[::127.0.0.1]:{port}/media/{job_id}/0.png",
            ):
                with pytest.raises(aiohttp.ClientError):
                    async with s.get(url) as resp:
                        await resp.read()
        allow = UrlPolicy.allowing("127.0.0.1")
        async with aiohttp.ClientSession(
            connector=guarded_connector(allow, resolver=resolver)
        ) as s:
            for host in ("127.0.0.1", "rebind.example.com"):
                async with s.get(f"http://{host}:{port}/media/{job_id}/0.png") as resp:
                    assert resp.status == 200
                    assert await resp.read() == PNG_1X1


async def test_guarded_connector_checks_every_redirect_hop() -> None:
    from aiohttp import web

    async def bounce(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://127.0.0.1:1/secret")

    app = web.Application()
    app.router.add_get("/", bounce)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.2", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        # The first hop (127.0.0.2) is allowed; the redirect target is not.
        policy = UrlPolicy.allowing("127.0.0.2")
        async with aiohttp.ClientSession(connector=guarded_connector(policy)) as s:
            with pytest.raises(aiohttp.ClientConnectorError) as info:
                async with s.get(f"http://127.0.0.2:{port}/") as resp:
                    await resp.read()
            assert "127.0.0.1" in str(info.value)
    finally:
        await runner.cleanup()


def test_numeric_hosts_decode_exactly_like_inet_aton() -> None:
    import socket

    from hypothesis import given
    from hypothesis import strategies as st

    part = st.one_of(
        st.integers(0, 0xFFFFFFFF).map(str),
        st.integers(0, 0xFFFFFFFF).map(hex),
        st.integers(0, 0o37777777777).map(lambda n: "0" + format(n, "o")),
        st.integers(0, 255).map(str),
        st.text(alphabet="0123456789abcdefxX+-_", max_size=10),  # near-numbers
    )

    @given(st.lists(part, min_size=1, max_size=4).map(".".join))
    def check(text: str) -> None:
        try:
            expected = socket.inet_ntoa(socket.inet_aton(text))
        except OSError:
            expected = None
        found = parse_ip_literal(text)
        assert (str(found) if found is not None else None) == expected, text

    check()
