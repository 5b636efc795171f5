"""Connect-time SSRF guard: check the address each connection actually goes to.

`check_url` resolves a host once, but DNS may answer differently when the fetch happens
(rebinding), so resolve-then-fetch is not enough. Every TCP connection opened for a
user-supplied URL resolves the host itself, refuses it if any address is forbidden, connects
to the checked address (never to the name again) and checks the socket's peer afterwards.
The httpx and yt-dlp clients plug this in: `actors.net.httpx_guard`, `actors.net.ytdlp_guard`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from actors.domain.errors import ForbiddenURL
from actors.net.urlguard import AddrInfo, IPAddress, is_forbidden_ip, parse_sockaddr_ip, resolve

AddressPolicy = Callable[[IPAddress], bool]  # True = forbidden


def allows_everything(_: IPAddress) -> bool:
    """The policy with private targets allowed (operator configuration, tests)."""
    return False


def address_policy(allow_private: bool, is_forbidden: AddressPolicy | None = None) -> AddressPolicy:
    """The policy to enforce: `is_forbidden` if given, else everything allowed or `is_forbidden_ip`."""
    if is_forbidden is not None:
        return is_forbidden
    return allows_everything if allow_private else is_forbidden_ip


def resolve_checked(host: str, port: int, is_forbidden: AddressPolicy = is_forbidden_ip) -> list[AddrInfo]:
    """Resolve `host` for TCP; raise ForbiddenURL if ANY address is forbidden.

    Refusing on any forbidden address (not just skipping it) matters: a name answering
    both a public and a private address must not reach the private one when the public
    one fails to connect.
    """
    infos = resolve(host, port)
    if not infos:
        raise OSError(f"getaddrinfo returned no address for {host!r}")
    for info in infos:
        address = parse_sockaddr_ip(str(info[4][0]))
        if is_forbidden(address):
            raise ForbiddenURL(f"connection to {host!r} refused: {address} is not a public address")
    return infos


def check_peer(sock: socket.socket, host: str, is_forbidden: AddressPolicy = is_forbidden_ip) -> None:
    """Raise ForbiddenURL if the connected socket's peer is a forbidden address."""
    address = parse_sockaddr_ip(str(sock.getpeername()[0]))
    if is_forbidden(address):
        raise ForbiddenURL(f"connection to {host!r} refused: peer {address} is not a public address")


def guarded_create_connection(
    address: tuple[str, int],
    timeout: float | object | None = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: tuple[str, int] | None = None,
    *,
    is_forbidden: AddressPolicy = is_forbidden_ip,
) -> socket.socket:
    """`socket.create_connection` that refuses forbidden peers (ForbiddenURL) before connecting."""
    host, port = address
    infos = resolve_checked(host, port, is_forbidden)
    if source_address is not None:  # same family as the bind address, like yt-dlp does
        family = socket.AF_INET6 if ":" in source_address[0] else socket.AF_INET
        infos = [info for info in infos if info[0] == family]
        if not infos:
            raise OSError(f"no address of the source address's family for {host!r}")
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)  # type: ignore[arg-type]
            if source_address is not None:
                sock.bind(source_address)
            sock.connect(sockaddr)  # the checked address, never the name again
            check_peer(sock, host, is_forbidden)
        except OSError as e:
            sock.close()
            error = e
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    assert error is not None
    raise error
