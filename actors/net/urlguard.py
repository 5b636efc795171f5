"""SSRF guard: decide whether a user-supplied URL may be fetched by the service.

`check_url` is the up-front check (format, scheme, host, resolved addresses). It is not
enough on its own: DNS can answer differently at fetch time (rebinding), so every
connection the service opens for a user URL is checked again at connect time by
`actors.net.connect` (httpx and yt-dlp).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import idna

from actors.domain.errors import ForbiddenURL, InvalidURL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]

_SCHEMES = {"http": 80, "https": 443}

# Explicit tables rather than only `ip.is_global`: its exact meaning has changed between
# Python patch releases, and multicast counts as "global" there.
_FORBIDDEN_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", incl. unspecified 0.0.0.0
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, incl. cloud metadata 169.254.169.254
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation TEST-NET-1
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation TEST-NET-2
        "203.0.113.0/24",  # documentation TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast 255.255.255.255
    )
)

# IPv6 is checked as an allowlist: only global unicast 2000::/3 may be reached, minus the
# special blocks inside it. Everything else (::, ::1, IPv4-compatible ::/96, 64:ff9b:1::/48,
# 100::/64 discard, fc00::/7 unique-local, fe80::/10 link-local, fec0::/10 site-local,
# ff00::/8 multicast, 5f00::/16 SRv6) is outside 2000::/3 and refused.
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_FORBIDDEN_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments, incl. Teredo 2001::/32, benchmarking, ORCHID
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix embeds an IPv4
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # 6to4 embeds an IPv4 in bits 16..48

_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_NUMERIC = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")  # a label inet_aton would read as a number
# Whitespace and control characters: urllib silently strips some of them (tab, newline),
# which lets "127.0.0.1" hide behind them, so any of them makes the URL invalid.
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


def is_forbidden_ip(ip: IPAddress) -> bool:
    """True when the service must not connect to `ip` (non-public, special or embedding such)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return any(ip in net for net in _FORBIDDEN_V4) or not ip.is_global
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d connects to a.b.c.d over IPv4
        return is_forbidden_ip(ip.ipv4_mapped)
    if ip in _NAT64:
        return is_forbidden_ip(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip in _SIX_TO_FOUR:
        return is_forbidden_ip(ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF))
    if ip not in _GLOBAL_UNICAST_V6 or any(ip in net for net in _FORBIDDEN_V6):
        return True
    return not ip.is_global


def parse_ipv4_like_inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """Parse `host` the way inet_aton/getaddrinfo do (127.1, 0177.0.0.1, 0x7f.1, 2130706433).

    Returns None when `host` is a name (its last label is not numeric); raises InvalidURL
    when it looks numeric but is not a valid address, since resolvers disagree on those.
    """
    parts = host.split(".")
    if not _NUMERIC.match(parts[-1]):
        return None
    values = [_parse_number(part) for part in parts]
    if len(parts) > 4 or any(v is None for v in values):
        raise InvalidURL(f"malformed numeric host {host!r}")
    *head, last = [v for v in values if v is not None]
    # inet_aton: each leading part is one byte; the last part fills the remaining bytes.
    if any(v > 0xFF for v in head) or last >= 1 << (8 * (4 - len(head))):
        raise InvalidURL(f"numeric host out of range {host!r}")
    number = last
    for i, v in enumerate(head):
        number |= v << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def _parse_number(part: str) -> int | None:
    """One inet_aton component: decimal, 0x hex or 0-prefixed octal; None if it is not one."""
    if not _NUMERIC.match(part):
        return None
    try:
        if part[:2] == "0x":
            return int(part[2:], 16)  # a bare "0x" is invalid, as for inet_aton
        if len(part) > 1 and part[0] == "0":
            return int(part[1:], 8)
        return int(part, 10)
    except ValueError:  # "08": octal prefix with a non-octal digit
        return None


def normalise_host(host: str) -> str:
    """Lower-case, IDNA-encode and strip one trailing dot; raises InvalidURL if it cannot."""
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise InvalidURL("empty host")
    if "%" in host:
        raise InvalidURL("percent-encoded or zone-scoped host")
    if not host.isascii():
        try:
            # UTS #46 mapping also folds full-width digits and dots, so "１２７．０．０．１"
            # becomes "127.0.0.1" and is then checked as an address below.
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as e:
            raise InvalidURL(f"host is not a valid internationalised name: {e}") from e
    host = host.lower().removesuffix(".")
    if not host:
        raise InvalidURL("empty host")
    return host


def _split_authority(netloc: str) -> tuple[str, int | None, bool]:
    """(host, port, is_ipv6_literal) from a URL authority without userinfo."""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise InvalidURL("unterminated IPv6 literal")
        host, rest = netloc[1:end], netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise InvalidURL("junk after IPv6 literal")
        port_text = rest[1:] if rest else None
        is_v6 = True
    else:
        if netloc.count(":") > 1:
            raise InvalidURL("IPv6 literal without brackets")
        host, _, port_text = netloc.partition(":")
        port_text = port_text if ":" in netloc else None
        is_v6 = False
    port: int | None = None
    if port_text is not None and port_text != "":
        if not _PORT.match(port_text) or not 0 < int(port_text) <= 65535:
            raise InvalidURL(f"bad port {port_text!r}")
        port = int(port_text)
    return host, port, is_v6


def host_matches(host: str, patterns: Sequence[str]) -> bool:
    """True when `host` equals a pattern or is a subdomain of a "*.example.com" pattern."""
    for raw in patterns:
        pattern = raw.strip()
        if pattern.startswith("*."):
            suffix = normalise_host(pattern[2:])
            if host.endswith("." + suffix):
                return True
        elif pattern and host == normalise_host(pattern):
            return True
    return False


def check_url(
    url: str,
    *,
    allow_private: bool = False,
    allowed_hosts: Sequence[str] = (),
    max_length: int = 2048,
    resolve: bool = True,
) -> str:
    """Return the normalised URL, or raise InvalidURL (malformed) / ForbiddenURL (refused host).

    A hostname is resolved and every address it resolves to must be allowed. A name that
    does not resolve now is let through: fetching it fails on its own, and the connect-time
    guard still checks whatever it resolves to later. This call may block on DNS: run it in
    a thread from async code (`check_url_async`), or pass `resolve=False` to check only the
    URL itself (format, literal addresses, local-only names) without any DNS lookup.
    """
    url = url.strip()
    if not url:
        raise InvalidURL("empty URL")
    if len(url) > max_length:
        raise InvalidURL(f"URL longer than {max_length} characters")
    if _BAD_CHARS.search(url):
        raise InvalidURL("URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise InvalidURL(f"malformed URL: {e}") from e
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise InvalidURL("only http and https URLs are accepted")
    if not parts.netloc:
        raise InvalidURL("URL has no host")
    if "@" in parts.netloc:
        # userinfo is never needed for a video link and is the classic "evil@127.0.0.1" trick.
        raise InvalidURL("URL must not contain a user name or password")
    raw_host, port, is_v6_literal = _split_authority(parts.netloc)

    ip: IPAddress | None
    if is_v6_literal:
        if "%" in raw_host:
            raise InvalidURL("IPv6 zone identifiers are not accepted")
        try:
            ip = ipaddress.IPv6Address(raw_host)
        except ValueError as e:
            raise InvalidURL(f"malformed IPv6 literal {raw_host!r}") from e
        host = str(ip)
    else:
        host = normalise_host(raw_host)
        ip = parse_ipv4_like_inet_aton(host)
        if ip is not None:
            host = str(ip)  # fetch exactly the address that was checked
        elif not all(_HOST_LABEL.match(label) for label in host.split(".")):
            raise InvalidURL(f"malformed host name {host!r}")

    if allowed_hosts and not host_matches(host, allowed_hosts):
        raise ForbiddenURL(f"host {host!r} is not in the allowed list")
    if not allow_private:
        if ip is not None:
            if is_forbidden_ip(ip):
                raise ForbiddenURL(f"address {ip} is not a public address")
        else:
            _check_hostname(host, port or _SCHEMES[scheme], resolve)

    netloc = f"[{host}]" if isinstance(ip, ipaddress.IPv6Address) else host
    if port is not None and port != _SCHEMES[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment))


def _check_hostname(host: str, port: int, resolve: bool) -> None:
    """Refuse local-only names and names that resolve to any forbidden address."""
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        raise ForbiddenURL(f"host {host!r} is local")
    if not resolve:
        return
    for address in resolve_addresses(host, port):
        if is_forbidden_ip(address):
            raise ForbiddenURL(f"host {host!r} resolves to a non-public address ({address})")


def resolve(host: str, port: int) -> list[AddrInfo]:
    """`getaddrinfo` for TCP: the one resolver of the guard (up-front check and connect time)."""
    return list(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))


def resolve_addresses(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to for TCP (empty when it does not resolve)."""
    try:
        infos = resolve(host, port)
    except (OSError, UnicodeError):
        return []
    return [parse_sockaddr_ip(str(info[4][0])) for info in infos]


def parse_sockaddr_ip(text: str) -> IPAddress:
    """The address in a sockaddr's host field, without an IPv6 zone suffix."""
    return ipaddress.ip_address(text.partition("%")[0])


async def check_url_async(
    url: str,
    *,
    allow_private: bool = False,
    allowed_hosts: Sequence[str] = (),
    max_length: int = 2048,
) -> str:
    """`check_url` in a worker thread, so DNS resolution never blocks the event loop."""
    return await asyncio.to_thread(
        check_url, url, allow_private=allow_private, allowed_hosts=allowed_hosts, max_length=max_length
    )
