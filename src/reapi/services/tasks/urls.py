"""The SSRF guard: which URLs the task gateway accepts as media inputs and may download from.

Two layers, because a check on the URL text alone cannot stop DNS rebinding:

* ``check_url_syntax`` (sync, no DNS) and ``check_url`` (async, resolves the host) decide at
  submit time, so a bad URL is a clear 2xxxx error instead of a failed task later;
* ``guarded_connector`` builds the aiohttp connector for every download the gateway itself makes
  (mirroring upstream outputs). Its resolver drops non-public answers and its socket factory
  refuses to connect to a non-public address, so the address checked is the address connected
  to, on every redirect hop and for IP literals too (aiohttp skips the resolver for those).

The allowlist (``UrlPolicy.allowed_networks``, ``allowed_hosts``) is empty by default; tests
use it to reach fake upstreams on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult

from reapi.protocols.tasks import TaskError, TaskErrorCode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names that mean "this machine" or "this site" without DNS ever being asked.
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")

# IANA's special-purpose blocks that are not globally reachable, written out rather than left to
# ``is_global``: the registry behind it differs between Python patch releases (3.11.7 calls
# ``::127.0.0.1`` and ``fec0::1`` global). Over-refusing a block no media host lives in is fine.
_NOT_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
# Every IPv6 unicast host on the internet is in 2000::/3; outside it only the two tunnelled
# forms below carry a public address, and inside it these blocks are special.
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_NOT_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) among them
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")
_BRACKETED = re.compile(r"\[[0-9A-Fa-f:.]+\](?::[0-9]*)?")
_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


@dataclass(frozen=True)
class UrlPolicy:
    """What the guard lets through besides public addresses. Empty (strict) by default.

    ``allowed_hosts`` only lifts the name rules (``localhost``, single-label names); the
    addresses a name resolves to must still be public or inside ``allowed_networks``, so one
    rule decides at submit time and at connect time.
    """

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, *entries: str) -> UrlPolicy:
        """Build from operator strings: each is an IP, a CIDR network or a host name."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def address_allowed(self, ip: IPAddress) -> bool:
        if any(ip in net for net in self.allowed_networks):
            return True
        return is_public_address(ip)


STRICT = UrlPolicy()


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses. IPv6 forms that reach an IPv4 host
    (IPv4-mapped, NAT64's well-known prefix, 6to4) are judged by the IPv4 address they carry;
    every other IPv6 address outside 2000::/3 is refused, including IPv4-compatible
    ``::a.b.c.d``, SIIT's ``::ffff:0:a.b.c.d``, local-use NAT64 and site-local ``fec0::/10``."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False  # a zone names an interface of this machine
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public_address(embedded)
        if ip not in _GLOBAL_UNICAST_V6 or any(ip in net for net in _NOT_PUBLIC_V6):
            return False
    elif any(ip in net for net in _NOT_PUBLIC_V4):
        return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip in _IPV4_MAPPED:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIXTOFOUR:
        return ip.sixtofour
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes as a literal, including the legacy IPv4 spellings that
    inet_aton accepts (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``), which
    browsers, curl and the C resolver all turn into an address."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    parts = bare.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        # Exactly inet_aton's digits: int() alone would also take "+1", "1_0" and non-ASCII
        # digits, which no fetcher reads as an address.
        if not _IPV4_PART.fullmatch(part):
            return None
        if part[:2] in ("0x", "0X"):
            numbers.append(int(part[2:], 16))
        else:
            numbers.append(int(part, 8 if part.startswith("0") else 10))
    # The last part fills every byte the earlier ones did not claim.
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    value = 0
    for n in leading:
        value = value << 8 | n
    value = value << (8 * (4 - len(leading))) | last
    return ipaddress.IPv4Address(value)


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    url: str
    host: str
    port: int
    literal: IPAddress | None = None
    addresses: tuple[IPAddress, ...] = field(default=())


def _reject(code: TaskErrorCode, message: str | None, param: str | None) -> TaskError:
    text = message or code.default_message
    return TaskError(code, f"{param}: {text}" if param else text, param=param)


def check_url_syntax(
    url: object, policy: UrlPolicy = STRICT, *, param: str | None = None
) -> CheckedUrl:
    """Everything that can be decided without DNS. Raises ``TaskError`` (2xxxx)."""
    if not isinstance(url, str):
        raise _reject(TaskErrorCode.WRONG_TYPE, "URL must be a string", param)
    text = url.strip()
    if text[:5].lower() == "data:":
        raise _reject(TaskErrorCode.DATA_URL_REJECTED, None, param)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise _reject(TaskErrorCode.INVALID_URL, f"{url!r} is not a valid URL", param) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _reject(TaskErrorCode.INVALID_URL, "Media inputs must be http(s) URLs", param)
    if parts.username is not None or parts.password is not None:
        # user@host spellings exist mainly to make a URL look like it goes somewhere else.
        raise _reject(TaskErrorCode.INVALID_URL, "URLs with credentials are not accepted", param)
    if any(c in text for c in "\\\r\n\t "):
        raise _reject(TaskErrorCode.INVALID_URL, "URL contains forbidden characters", param)
    host = _ascii_host(parts.hostname)
    # Brackets hold an IPv6 address and nothing else (no zone, no IPvFuture), followed only by
    # a port: urlsplit ignores text after "]", which another parser may read as the host.
    if host is None or (
        ("[" in parts.netloc or "]" in parts.netloc) and not _BRACKETED.fullmatch(parts.netloc)
    ):
        raise _reject(TaskErrorCode.INVALID_URL, "URL host is not a valid host name", param)
    if port is None:
        port = 443 if parts.scheme.lower() == "https" else 80
    literal = parse_ip_literal(host)
    if literal is not None:
        if not policy.address_allowed(literal):
            raise _reject(TaskErrorCode.PRIVATE_ADDRESS_REJECTED, _private(host), param)
        return CheckedUrl(text, host, port, literal, (literal,))
    if host not in policy.allowed_hosts and (
        host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES) or "." not in host
    ):
        raise _reject(TaskErrorCode.PRIVATE_ADDRESS_REJECTED, _private(host), param)
    return CheckedUrl(text, host, port)


def _ascii_host(hostname: str) -> str | None:
    """The host as the fetcher will see it. Browsers and most HTTP clients map full-width
    digits and ideographic dots to ASCII and decode percent escapes, so a host written in
    full-width digits can be loopback to them: the checks must run on the mapped form."""
    if "%" in hostname:
        return None  # percent escapes, or an IPv6 zone (an interface of this machine)
    if ":" in hostname:
        return hostname.lower()
    try:
        mapped = hostname.encode("idna").decode("ascii") if not hostname.isascii() else hostname
    except UnicodeError:
        return None
    return mapped.lower().rstrip(".")


def _private(host: str) -> str:
    return f"URL host {host!r} is a private, loopback or reserved address"


class Resolver:
    """Host name to addresses. The default asks the system resolver; tests substitute a table."""

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return _unique(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)


class StaticResolver(Resolver):
    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self._table = {name.lower(): list(ips) for name, ips in table.items()}

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        if host.lower() not in self._table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(ip) for ip in self._table[host.lower()]]


def _unique(ips: Iterable[IPAddress]) -> list[IPAddress]:
    return list(dict.fromkeys(ips))


async def check_url(
    url: object,
    policy: UrlPolicy = STRICT,
    *,
    resolver: Resolver | None = None,
    param: str | None = None,
) -> CheckedUrl:
    """``check_url_syntax`` plus DNS: every address the host resolves to must be allowed (a name
    with one public and one private answer is refused: the client may get either)."""
    checked = check_url_syntax(url, policy, param=param)
    if checked.literal is not None:
        return checked
    try:
        ips = await (resolver or Resolver()).addresses(checked.host, checked.port)
    except (OSError, UnicodeError):
        ips = []
    if not ips:
        raise _reject(
            TaskErrorCode.UNRESOLVABLE_HOST, f"URL host {checked.host!r} does not resolve", param
        )
    if not all(policy.address_allowed(ip) for ip in ips):
        raise _reject(TaskErrorCode.PRIVATE_ADDRESS_REJECTED, _private(checked.host), param)
    return CheckedUrl(checked.url, checked.host, checked.port, None, tuple(ips))


class BlockedAddressError(OSError):
    """Raised inside the connector: the connection would reach a non-public address."""


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that answers only with allowed addresses, so a name is resolved once
    and the connection goes to an address that was checked."""

    def __init__(self, policy: UrlPolicy = STRICT, resolver: Resolver | None = None) -> None:
        self._policy = policy
        self._resolver = resolver or Resolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        name = host.lower().rstrip(".")
        if name not in self._policy.allowed_hosts and (
            name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES)
        ):
            raise BlockedAddressError(f"refusing to resolve local name {host!r}")
        ips = await self._resolver.addresses(host, port)
        allowed = [ip for ip in ips if self._policy.address_allowed(ip)]
        if len(allowed) != len(ips) or not allowed:
            raise BlockedAddressError(f"{host!r} resolves to a non-public address")
        return [
            {
                "hostname": host,
                "host": str(ip),
                "port": port,
                "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for ip in allowed
        ]

    async def close(self) -> None:
        return None


def guarded_socket_factory(policy: UrlPolicy = STRICT) -> SocketFactoryType:
    """The last check before ``connect()``: it sees the exact address, whatever produced it."""

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if not policy.address_allowed(ip):
            raise BlockedAddressError(f"refusing to connect to non-public address {ip}")
        sock = socket.socket(family=family, type=type_, proto=proto)
        sock.setblocking(False)
        return sock

    return factory


def guarded_connector(
    policy: UrlPolicy = STRICT, *, resolver: Resolver | None = None, limit: int = 100
) -> aiohttp.TCPConnector:
    """The connector for the gateway's own downloads. Pass it to the download session only:
    calls to operator-configured upstream base URLs may legitimately target private hosts."""
    return aiohttp.TCPConnector(
        resolver=GuardedResolver(policy, resolver),
        socket_factory=guarded_socket_factory(policy),
        limit=limit,
        use_dns_cache=False,
    )
