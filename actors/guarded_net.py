"""Connect-time SSRF guard: check the address each connection actually goes to.

`check_url` resolves a host once, but DNS may answer differently when the fetch happens
(rebinding), so resolve-then-fetch is not enough. Here every TCP connection opened for a
user-supplied URL resolves the host itself, refuses it if any address is forbidden, connects
to the checked address (never to the name again) and checks the socket's peer afterwards.

- httpx: `guarded_async_client` uses an httpcore network backend that does the above.
- yt-dlp: `GuardedYoutubeDL` is a YoutubeDL whose only request handler is yt-dlp's urllib
  handler with the checked connection function; redirects, subtitles, fragments and media
  all go through it. Downloaders that open connections outside Python (ffmpeg, rtmpdump,
  aria2c, ...) are refused, and ffmpeg is additionally denied network protocols.
"""

from __future__ import annotations

import functools
import http.client
import socket
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import httpcore
import httpx
from yt_dlp import YoutubeDL
from yt_dlp.downloader import get_suitable_downloader
from yt_dlp.downloader.dash import DashSegmentsFD
from yt_dlp.downloader.external import ExternalFD
from yt_dlp.downloader.hls import HlsFD
from yt_dlp.downloader.http import HttpFD
from yt_dlp.networking._urllib import HTTPHandler, RedirectHandler, UrllibRH
from yt_dlp.networking.exceptions import TransportError
from yt_dlp.utils import DownloadError

from actors.errors import ForbiddenURL
from actors.urlguard import IPAddress, is_forbidden_ip, parse_sockaddr_ip

AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
AddressPolicy = Callable[[IPAddress], bool]  # True = forbidden


def _allow_all(_: IPAddress) -> bool:
    return False


def address_policy(allow_private: bool, is_forbidden: AddressPolicy | None = None) -> AddressPolicy:
    """The policy to enforce: `is_forbidden` if given, else everything allowed or `is_forbidden_ip`."""
    if is_forbidden is not None:
        return is_forbidden
    return _allow_all if allow_private else is_forbidden_ip


# ---------------------------------------------------------------- shared check


def resolve_checked(host: str, port: int, is_forbidden: AddressPolicy = is_forbidden_ip) -> list[AddrInfo]:
    """Resolve `host` for TCP; raise ForbiddenURL if ANY address is forbidden.

    Refusing on any forbidden address (not just skipping it) matters: a name answering
    both a public and a private address must not reach the private one when the public
    one fails to connect.
    """
    infos: list[AddrInfo] = list(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
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


# ---------------------------------------------------------------- httpx


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
        if self._is_forbidden is not _allow_all:
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
        # tests/test_urlguard.py proves a forbidden peer is refused through the public client.
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


# ---------------------------------------------------------------- yt-dlp


def _ydl_create_connection(
    address: tuple[str, int],
    timeout: float | object | None = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: tuple[str, int] | None = None,
    *,
    is_forbidden: AddressPolicy,
) -> socket.socket:
    try:
        return guarded_create_connection(address, timeout, source_address, is_forbidden=is_forbidden)
    except ForbiddenURL as e:
        # Exactly TransportError (not a subclass): yt-dlp then reports a network error rather
        # than asking for a bug report; `forbidden_cause` finds the ForbiddenURL in `.cause`.
        raise TransportError(e.message, cause=e) from e


class _GuardedHTTPHandler(HTTPHandler):
    """yt-dlp's urllib HTTP handler with the checked connection function and no SOCKS path."""

    def __init__(self, *, is_forbidden: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._connect = functools.partial(_ydl_create_connection, is_forbidden=is_forbidden)

    def _connection(self, conn_class: type[http.client.HTTPConnection], *args: Any, **kwargs: Any) -> Any:
        conn = conn_class(*args, **kwargs)
        conn._create_connection = self._connect  # type: ignore[attr-defined]  # http.client's seam, as yt-dlp uses
        if self._source_address is not None:
            conn.source_address = (self._source_address, 0)  # type: ignore[attr-defined]
        return conn

    def http_open(self, req: urllib.request.Request) -> Any:
        """Open an http:// request over a checked connection."""
        req.headers.pop("Ytdl-socks-proxy", None)
        return self.do_open(functools.partial(self._connection, http.client.HTTPConnection), req)

    def https_open(self, req: urllib.request.Request) -> Any:
        """Open an https:// request over a checked connection."""
        req.headers.pop("Ytdl-socks-proxy", None)
        return self.do_open(
            functools.partial(self._connection, http.client.HTTPSConnection), req, context=self._context
        )


class GuardedUrllibRH(UrllibRH):
    """The urllib request handler restricted to http/https/data over checked connections.

    No ftp:// or file:// (urllib would follow an http redirect to ftp:// through ftplib,
    outside the check) and no proxies of any kind (a proxy hides the real peer).
    """

    _SUPPORTED_URL_SCHEMES = ("http", "https", "data")
    _SUPPORTED_PROXY_SCHEMES = ()
    RH_NAME = "urllib-guarded"

    def __init__(self, *, is_forbidden: AddressPolicy, **kwargs: Any) -> None:
        kwargs["enable_file_urls"] = False
        super().__init__(**kwargs)
        self._is_forbidden = is_forbidden

    def _create_instance(self, proxies: Any, cookiejar: Any, legacy_ssl_support: Any = None) -> Any:
        opener = urllib.request.OpenerDirector()
        for handler in (
            _GuardedHTTPHandler(
                is_forbidden=self._is_forbidden,
                debuglevel=int(bool(self.verbose)),
                context=self._make_sslcontext(legacy_ssl_support=legacy_ssl_support),
                source_address=self.source_address,
            ),
            urllib.request.HTTPCookieProcessor(cookiejar),
            urllib.request.DataHandler(),
            urllib.request.UnknownHandler(),  # anything else (ftp:, file: after a redirect) fails here
            urllib.request.HTTPDefaultErrorHandler(),
            urllib.request.HTTPErrorProcessor(),
            RedirectHandler(),
        ):
            opener.add_handler(handler)
        opener.addheaders = []  # as yt-dlp: no urllib default User-Agent
        return opener


# Downloaders that fetch through YoutubeDL.urlopen, i.e. through the guarded handler.
_IN_PROCESS_DOWNLOADERS = (HttpFD, HlsFD, DashSegmentsFD)


def guarded_ydl_params() -> dict[str, Any]:
    """YoutubeDL params the guard needs; `GuardedYoutubeDL` applies them over the caller's."""
    return {
        "proxy": "",  # direct connections only (no env proxies): the check must see the real peer
        "enable_file_urls": False,
        "external_downloader": {"default": "native"},  # no aria2c/curl/wget: they bypass the check
        "hls_prefer_native": True,  # HLS fragments through yt-dlp's own (guarded) requests
        # If HlsFD still falls back to ffmpeg (unsupported HLS features), ffmpeg may read only
        # local inputs: its own HTTP client would bypass the check.
        "external_downloader_args": {"ffmpeg_i": ["-protocol_whitelist", "file,crypto,data"]},
    }


class GuardedYoutubeDL(YoutubeDL):
    """YoutubeDL whose every connection is SSRF-checked at connect time, per instance.

    Thread-safe by construction: the guard lives in this instance's request handler, not in
    process-global state, so concurrent instances with different settings do not interact.
    """

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        auto_init: bool = True,
        *,
        allow_private: bool,
        is_forbidden: AddressPolicy | None = None,
    ) -> None:
        # Set before YoutubeDL.__init__, which may already build the request director.
        self._vidscribe_policy = address_policy(allow_private, is_forbidden)
        super().__init__({**(params or {}), **guarded_ydl_params()}, auto_init)

    def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
        """Only the guarded urllib handler: no requests/websockets/curl_cffi handler."""
        guarded = functools.partial(GuardedUrllibRH, is_forbidden=self._vidscribe_policy)
        return super().build_request_director([guarded], preferences)

    def dl(self, name: str, info: dict[str, Any], subtitle: bool = False, test: bool = False) -> Any:
        """Refuse downloads that would run outside Python (ffmpeg, rtmpdump, ...), then download."""
        downloader = get_suitable_downloader(dict(info), self.params, to_stdout=(name == "-"))
        if (
            downloader is None
            or not issubclass(downloader, _IN_PROCESS_DOWNLOADERS)
            or issubclass(downloader, ExternalFD)
        ):
            label = getattr(downloader, "__name__", "none")
            live = bool(info.get("is_live"))
            raise DownloadError(
                f"format {info.get('format_id')!r} (protocol {info.get('protocol')!r}, live={live})"
                f" needs downloader {label}, which the SSRF guard cannot check"
            )
        return super().dl(name, info, subtitle, test)


def forbidden_cause(exc: BaseException) -> ForbiddenURL | None:
    """The ForbiddenURL behind a yt-dlp or httpx error, if the SSRF guard caused it."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ForbiddenURL):
            return current
        exc_info = getattr(current, "exc_info", None)
        stack.extend(
            [
                current.__cause__ if isinstance(current, BaseException) else None,
                current.__context__ if isinstance(current, BaseException) else None,
                getattr(current, "cause", None),
                getattr(current, "reason", None),
                exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
            ]
        )
    return None
