"""The SSRF guard for yt-dlp: `GuardedYoutubeDL` is a YoutubeDL whose only request handler is
yt-dlp's urllib handler with the checked connection function (`actors.net.connect`), so
redirects, subtitles, fragments and media all go through the check. Downloaders that open
connections outside Python (ffmpeg, rtmpdump, aria2c, ...) are refused, and ffmpeg is
additionally denied network protocols.

Proxies (`actors.net.proxies.ProxyRoutes`, operator configuration) are chosen per request,
redirect hops included. Before a request is handed to a proxy its target host is resolved
and checked like a direct connection's; only the connection to the proxy itself is not
checked. A SOCKS proxy that takes addresses (socks4, socks5) is given the checked address,
never the name; an HTTP proxy or socks4a/socks5h resolves the name itself.
"""

from __future__ import annotations

import base64
import functools
import http.client
import socket
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit

from yt_dlp import YoutubeDL
from yt_dlp.downloader import get_suitable_downloader
from yt_dlp.downloader.dash import DashSegmentsFD
from yt_dlp.downloader.external import ExternalFD
from yt_dlp.downloader.hls import HlsFD
from yt_dlp.downloader.http import HttpFD
from yt_dlp.networking._helper import create_connection, create_socks_proxy_socket, make_socks_proxy_opts
from yt_dlp.networking._urllib import HTTPHandler, RedirectHandler, UrllibRH
from yt_dlp.networking.exceptions import TransportError
from yt_dlp.utils import DownloadError

from actors.domain.errors import ForbiddenURL
from actors.net.connect import (
    AddressPolicy,
    address_policy,
    allows_everything,
    guarded_create_connection,
    resolve_checked,
)
from actors.net.proxies import ProxyRoutes
from actors.net.urlguard import parse_sockaddr_ip

# Set on a urllib Request by `_ProxyRouter` once its target passed the check: the connection
# then goes to the (trusted) proxy instead of the target.
_HTTP_PROXY = "_vidscribe_http_proxy"
_SOCKS_PROXY = "_vidscribe_socks_proxy"  # (proxy URL, target host or checked IP)
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
        raise _refused(e) from e


def _refused(error: ForbiddenURL) -> TransportError:
    """Exactly TransportError (not a subclass): yt-dlp then reports a network error rather
    than asking for a bug report; `forbidden_cause` finds the ForbiddenURL in `.cause`."""
    return TransportError(error.message, cause=error)


class _ProxyRouter(urllib.request.BaseHandler):
    """Runs before the HTTP handler on every request (redirect hops too): picks the request's
    proxy by the operator's routes and, before handing the request to it, checks the target."""

    handler_order = 100  # before the HTTP handler (500), like urllib's ProxyHandler

    def __init__(self, routes: ProxyRoutes, is_forbidden: AddressPolicy) -> None:
        self._routes = routes
        self._is_forbidden = is_forbidden

    def http_open(self, req: urllib.request.Request) -> None:
        """Mark the request for its proxy (or leave it direct); the HTTP handler then opens it
        (returning None hands the request on, as urllib's own ProxyHandler does)."""
        target = urlsplit(req.full_url)
        host = target.hostname or ""
        proxy = self._routes.proxy_for(host)
        if proxy is None:
            return  # direct: the connection itself is checked (guarded_create_connection)
        checked_ip = self._check_target(host, target.port or _DEFAULT_PORTS.get(target.scheme, 80))
        parts = urlsplit(proxy)
        if parts.scheme.startswith("socks"):
            # A proxy that resolves names (socks4a, socks5h) gets the name: the point of such a
            # proxy is often that local DNS answers wrongly for the site. The others get the IP.
            remote_dns = parts.scheme in ("socks4a", "socks5h")
            setattr(req, _SOCKS_PROXY, (proxy, host if remote_dns or checked_ip is None else checked_ip))
            return
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            # Unredirected: a redirect hop that goes elsewhere never carries the proxy's password.
            token = base64.b64encode(credentials.encode()).decode()
            req.add_unredirected_header("Proxy-Authorization", f"Basic {token}")
        proxy_host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        req.set_proxy(f"{proxy_host}:{parts.port or 80}", "http")  # https targets tunnel (CONNECT)
        setattr(req, _HTTP_PROXY, True)

    https_open = http_open

    def _check_target(self, host: str, port: int) -> str | None:
        """The checked address of `host` (None when private targets are allowed: nothing to check)."""
        if self._is_forbidden is allows_everything:
            return None
        try:
            infos = resolve_checked(host, port, self._is_forbidden)
        except ForbiddenURL as e:
            raise _refused(e) from e
        except OSError as e:  # a target the guard cannot resolve cannot be checked: not sent
            raise TransportError(f"cannot resolve {host!r} to check it before using the proxy: {e}") from e
        return str(parse_sockaddr_ip(str(infos[0][4][0])))


def _socks_connection(base: type[http.client.HTTPConnection], proxy: str, target: str) -> Any:
    """`base` connecting through a SOCKS proxy to `target` (the checked IP, or the name for
    socks4a/socks5h); TLS still verifies the URL's host name."""
    proxy_args = make_socks_proxy_opts(proxy)

    class SocksConnection(base):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            self.sock = create_connection(
                (proxy_args["addr"], proxy_args["port"]),  # the proxy: operator configuration, trusted
                timeout=self.timeout,
                source_address=self.source_address,
                _create_socket_func=functools.partial(create_socks_proxy_socket, (target, self.port), proxy_args),
            )
            if isinstance(self, http.client.HTTPSConnection):
                self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)  # type: ignore[attr-defined]

    return SocksConnection


class _GuardedHTTPHandler(HTTPHandler):
    """yt-dlp's urllib HTTP handler with the checked connection function; a request that
    `_ProxyRouter` sent to a proxy connects to that proxy instead."""

    def __init__(self, *, is_forbidden: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._connect = functools.partial(_ydl_create_connection, is_forbidden=is_forbidden)

    def _connection(
        self, conn_class: type[http.client.HTTPConnection], *args: Any, to_proxy: bool = False, **kwargs: Any
    ) -> Any:
        conn = conn_class(*args, **kwargs)
        # http.client's seam, as yt-dlp uses it; the proxy is trusted, its target was checked.
        conn._create_connection = create_connection if to_proxy else self._connect  # type: ignore[attr-defined]
        if self._source_address is not None:
            conn.source_address = (self._source_address, 0)  # type: ignore[attr-defined]
        return conn

    def _open(self, base: type[http.client.HTTPConnection], req: urllib.request.Request, **kwargs: Any) -> Any:
        req.headers.pop("Ytdl-socks-proxy", None)  # yt-dlp's own proxy path is never taken
        socks = getattr(req, _SOCKS_PROXY, None)
        conn_class = _socks_connection(base, *socks) if socks else base
        connect = functools.partial(self._connection, conn_class, to_proxy=getattr(req, _HTTP_PROXY, False))
        return self.do_open(connect, req, **kwargs)

    def http_open(self, req: urllib.request.Request) -> Any:
        """Open an http:// request over a checked connection (or through its proxy)."""
        return self._open(http.client.HTTPConnection, req)

    def https_open(self, req: urllib.request.Request) -> Any:
        """Open an https:// request over a checked connection (or through its proxy)."""
        return self._open(http.client.HTTPSConnection, req, context=self._context)


class GuardedUrllibRH(UrllibRH):
    """The urllib request handler restricted to http/https/data over checked connections.

    No ftp:// or file:// (urllib would follow an http redirect to ftp:// through ftplib,
    outside the check). yt-dlp's own proxies (environment, extractors) are refused: only the
    operator's routes are used, through `_ProxyRouter`, which checks each target first.
    """

    _SUPPORTED_URL_SCHEMES = ("http", "https", "data")
    _SUPPORTED_PROXY_SCHEMES = ()
    RH_NAME = "urllib-guarded"

    def __init__(self, *, is_forbidden: AddressPolicy, routes: ProxyRoutes, **kwargs: Any) -> None:
        kwargs["enable_file_urls"] = False
        super().__init__(**kwargs)
        self._is_forbidden = is_forbidden
        self._routes = routes

    def _create_instance(self, proxies: Any, cookiejar: Any, legacy_ssl_support: Any = None) -> Any:
        opener = urllib.request.OpenerDirector()
        for handler in (
            _ProxyRouter(self._routes, self._is_forbidden),
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
        "proxy": "",  # no environment proxies: the operator's routes go through `_ProxyRouter`
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
        proxies: ProxyRoutes | None = None,
    ) -> None:
        """`proxies`: the operator's proxy routes (default: every connection direct)."""
        # Set before YoutubeDL.__init__, which may already build the request director.
        self._vidscribe_policy = address_policy(allow_private, is_forbidden)
        self._vidscribe_routes = proxies or ProxyRoutes()
        super().__init__({**(params or {}), **guarded_ydl_params()}, auto_init)

    def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
        """Only the guarded urllib handler: no requests/websockets/curl_cffi handler."""
        guarded = functools.partial(GuardedUrllibRH, is_forbidden=self._vidscribe_policy, routes=self._vidscribe_routes)
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


def causes(error: BaseException) -> list[BaseException]:
    """`error` and everything it wraps: Python's __cause__/__context__, yt-dlp's exc_info and
    `cause`, urllib's `reason`."""
    seen: list[BaseException] = []
    pending: list[object] = [error]
    while pending:
        exc = pending.pop()
        if not isinstance(exc, BaseException) or any(exc is s for s in seen):
            continue
        seen.append(exc)
        exc_info = getattr(exc, "exc_info", None)
        wrapped = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None
        pending += [exc.__cause__, exc.__context__, wrapped, getattr(exc, "cause", None), getattr(exc, "reason", None)]
    return seen


def forbidden_cause(error: BaseException) -> ForbiddenURL | None:
    """The ForbiddenURL behind a yt-dlp or httpx error, if the SSRF guard caused it."""
    return next((exc for exc in causes(error) if isinstance(exc, ForbiddenURL)), None)
