"""The SSRF guard for yt-dlp: `GuardedYoutubeDL` is a YoutubeDL whose only request handler is
yt-dlp's urllib handler with the checked connection function (`actors.net.connect`), so
redirects, subtitles, fragments and media all go through the check. Downloaders that open
connections outside Python (ffmpeg, rtmpdump, aria2c, ...) are refused, and ffmpeg is
additionally denied network protocols.
"""

from __future__ import annotations

import functools
import http.client
import socket
import urllib.request
from typing import Any

from yt_dlp import YoutubeDL
from yt_dlp.downloader import get_suitable_downloader
from yt_dlp.downloader.dash import DashSegmentsFD
from yt_dlp.downloader.external import ExternalFD
from yt_dlp.downloader.hls import HlsFD
from yt_dlp.downloader.http import HttpFD
from yt_dlp.networking._urllib import HTTPHandler, RedirectHandler, UrllibRH
from yt_dlp.networking.exceptions import TransportError
from yt_dlp.utils import DownloadError

from actors.domain.errors import ForbiddenURL
from actors.net.connect import AddressPolicy, address_policy, guarded_create_connection


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
