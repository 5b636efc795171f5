"""The SSRF guard for httpx: `guarded_async_client` is an httpx.AsyncClient whose every
connection (redirects included) goes through an httpcore network backend that resolves
and checks the host, connects to the checked address and checks the peer (`actors.net.connect`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx

from actors.domain.errors import ForbiddenURL
from actors.net.connect import AddressPolicy, address_policy, allows_everything, check_peer, resolve_checked
from actors.net.urlguard import parse_sockaddr_ip


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore backend that resolves and checks the host, then connects to the checked IP."""

    def __init__(self, is_forbidden: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._is_forbidden = is_forbidden
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to a checked address of `host`; TLS still uses `host` for SNI and certificates."""
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.to_thread.run_sync(resolve_checked, host, port, self._is_forbidden)
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from e
        except OSError as e:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {e}") from e
        error: Exception | None = None
        for info in infos:
            ip = str(parse_sockaddr_ip(str(info[4][0])))
            try:
                stream = await self._inner.connect_tcp(ip, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                error = e
                continue
            sock = stream.get_extra_info("socket")
            if sock is not None:
                try:
                    check_peer(sock, host, self._is_forbidden)
                except ForbiddenURL:
                    await stream.aclose()
                    raise
            return stream
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are local by definition: refused unless private targets are allowed."""
        if self._is_forbidden is not allows_everything:
            raise ForbiddenURL("connections to unix sockets are refused")
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        """Delegate to the wrapped backend."""
        await self._inner.sleep(seconds)


class GuardedAsyncTransport(httpx.AsyncHTTPTransport):
    """httpx transport whose connections go through `GuardedNetworkBackend`; never via a proxy."""

    def __init__(
        self,
        *,
        allow_private: bool,
        is_forbidden: AddressPolicy | None = None,
        verify: Any = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),  # noqa: B008
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> None:
        super().__init__(verify=verify, cert=cert, trust_env=trust_env, http1=http1, http2=http2, limits=limits)
        # httpx has no public knob for the network backend, so the pool is rebuilt with it;
        # tests/unit/test_urlguard.py proves a forbidden peer is refused through the public client.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=http1,
            http2=http2,
            local_address=local_address,
            retries=retries,
            socket_options=socket_options,
            network_backend=GuardedNetworkBackend(address_policy(allow_private, is_forbidden)),
        )


_TRANSPORT_KWARGS = ("verify", "cert", "trust_env", "http1", "http2", "limits")
_REFUSED_KWARGS = ("transport", "mounts", "proxy", "proxies", "app")


def guarded_async_client(
    *, allow_private: bool, is_forbidden: AddressPolicy | None = None, **httpx_kwargs: Any
) -> httpx.AsyncClient:
    """An httpx.AsyncClient whose every connection (redirects included) is SSRF-checked.

    A forbidden target raises actors.errors.ForbiddenURL from the request call. Proxies
    and custom transports are refused: a proxy would hide the real peer from the check.
    `is_forbidden` replaces the address policy (tests use it to forbid one loopback address).
    """
    refused = [k for k in _REFUSED_KWARGS if k in httpx_kwargs]
    if refused:
        raise TypeError(f"guarded_async_client does not accept {', '.join(refused)}")
    transport_kwargs = {k: httpx_kwargs[k] for k in _TRANSPORT_KWARGS if k in httpx_kwargs}
    transport = GuardedAsyncTransport(allow_private=allow_private, is_forbidden=is_forbidden, **transport_kwargs)
    return httpx.AsyncClient(transport=transport, **httpx_kwargs)
