"""SSRF guard: the URL check, and the connect-time check in httpx and yt-dlp (offline).

The resolver seam is `socket.getaddrinfo` (there is no internet here); servers are real
local HTTP servers on 127.0.0.1 and 127.0.0.2, which are forbidden addresses unless
`allow_private` is set or a test policy says otherwise.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg
import pytest
import trustme
from hypothesis import example, given
from hypothesis import strategies as st
from yt_dlp import YoutubeDL
from yt_dlp.utils import DownloadError

from actors.domain.errors import ForbiddenURL, InvalidURL, VidscribeError
from actors.net.httpx_guard import guarded_async_client
from actors.net.urlguard import check_url, check_url_async, is_forbidden_ip, parse_ipv4_like_inet_aton
from actors.net.ytdlp_guard import GuardedYoutubeDL, forbidden_cause
from tests.support.ssrf_cases import PUBLIC_LITERAL_URLS, SSRF_CASES, SSRFCase

REAL_GETADDRINFO = socket.getaddrinfo
QUIET: dict[str, Any] = {"quiet": True, "no_warnings": True, "noprogress": True}

# ------------------------------------------------------------------ resolver seam


def _addrinfo(ip: str, port: Any) -> list[Any]:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sockaddr = (ip, int(port or 0), 0, 0) if family == socket.AF_INET6 else (ip, int(port or 0))
    return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]


@dataclass
class FakeDNS:
    """Answers for some names; every other name goes to the real resolver (numeric hosts)."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)  # name -> answers, one per lookup
    lookups: list[str] = field(default_factory=list)

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        self.lookups.append(name)
        answers = self.answers[name]
        ips = answers.pop(0) if len(answers) > 1 else answers[0]  # the last answer repeats
        if not ips:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [info for ip in ips for info in _addrinfo(ip, port)]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"unexpected DNS lookup {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# ------------------------------------------------------------------ local sites


@dataclass
class Site:
    """A real HTTP server on one loopback address; records every request path."""

    host: str
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    port: int = 0
    scheme: str = "http"

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    def page(self, path: str, html: str) -> str:
        self.routes[path] = (200, {"Content-Type": "text/html; charset=utf-8"}, html.encode())
        return self.url(path)

    def file(self, path: str, body: bytes, content_type: str) -> str:
        self.routes[path] = (200, {"Content-Type": content_type}, body)
        return self.url(path)

    def redirect(self, path: str, location: str) -> str:
        self.routes[path] = (302, {"Location": location}, b"")
        return self.url(path)


def _serve(site: Site, tls: ssl.SSLContext | None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append(self.path)
            status, headers, body = site.routes.get(self.path, (404, {}, b"not found"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((site.host, 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        site.scheme = "https"
    site.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def make_site() -> Iterator[Callable[..., Site]]:
    servers: list[ThreadingHTTPServer] = []

    def make(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Site:
        site = Site(host)
        servers.append(_serve(site, tls))
        return site

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def only_second_loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Test policy: 127.0.0.2 plays the private network, 127.0.0.1 the public internet."""
    return ip == ipaddress.IPv4Address("127.0.0.2")


VIDEO_PAGE = """<html><head><title>{title}</title></head><body>
<video src="{media}">{track}</video></body></html>"""


def video_page(title: str, media: str, subtitles: str | None = None) -> str:
    track = f'<track kind="subtitles" src="{subtitles}" srclang="en">' if subtitles else ""
    return VIDEO_PAGE.format(title=title, media=media, track=track)


# ------------------------------------------------------------------ check_url: the corpus


@pytest.mark.parametrize("case", SSRF_CASES, ids=[c.why for c in SSRF_CASES])
def test_corpus_is_refused_with_the_right_code(case: SSRFCase, no_dns: None) -> None:
    expected = InvalidURL if case.code == InvalidURL.code else ForbiddenURL
    with pytest.raises(expected) as info:
        check_url(case.url)
    assert info.value.code == case.code
    assert info.value.http_status == 400


def test_corpus_covers_the_brief() -> None:
    codes = [c.code for c in SSRF_CASES]
    assert len(SSRF_CASES) >= 30
    assert codes.count(InvalidURL.code) >= 10
    assert codes.count(ForbiddenURL.code) >= 30


@pytest.mark.parametrize(("url", "normalised"), PUBLIC_LITERAL_URLS.items())
def test_public_literals_are_accepted_without_dns(url: str, normalised: str, no_dns: None) -> None:
    assert check_url(url) == normalised


def test_numeric_spellings_are_fetched_as_the_checked_address(no_dns: None) -> None:
    # What is fetched must be exactly what was checked, not a spelling a resolver reinterprets.
    assert check_url("http://0x5d.0xb8.0xd7.0x0e/") == "http://93.184.215.14/"
    assert check_url("http://93.12113678/") == "http://93.184.215.14/"


# ------------------------------------------------------------------ check_url: names and DNS


def test_name_resolving_to_a_private_address_is_forbidden(dns: FakeDNS) -> None:
    dns.answers["intranet.example"] = [["10.1.2.3"]]
    with pytest.raises(ForbiddenURL, match=r"10\.1\.2\.3"):
        check_url("https://intranet.example/video")


def test_every_resolved_address_must_be_allowed(dns: FakeDNS) -> None:
    dns.answers["mixed.example"] = [["93.184.215.14", "169.254.169.254"]]
    with pytest.raises(ForbiddenURL):
        check_url("http://mixed.example/")
    dns.answers["v6.example"] = [["2606:4700::1", "fd00::5"]]
    with pytest.raises(ForbiddenURL):
        check_url("http://v6.example/")


def test_public_name_is_accepted_and_normalised(dns: FakeDNS) -> None:
    dns.answers["video.example.com"] = [["93.184.215.14", "2606:4700::1"]]
    assert check_url("  HTTPS://Video.Example.COM.:443/watch?v=1  ") == "https://video.example.com/watch?v=1"
    assert check_url("http://video.example.com:8080") == "http://video.example.com:8080/"
    assert dns.lookups == ["video.example.com", "video.example.com"]


def test_idn_host_is_resolved_and_returned_in_punycode(dns: FakeDNS) -> None:
    dns.answers["xn--bcher-kva.example"] = [["93.184.215.14"]]
    assert check_url("http://Bücher.example/v") == "http://xn--bcher-kva.example/v"
    assert dns.lookups == ["xn--bcher-kva.example"]
    with pytest.raises(InvalidURL):
        check_url("http://xn--.example/")  # not a valid IDNA label


def test_resolve_false_checks_the_url_without_dns(no_dns: None) -> None:
    assert check_url("https://Video.Example.com/x", resolve=False) == "https://video.example.com/x"
    with pytest.raises(ForbiddenURL):
        check_url("http://localhost./", resolve=False)
    with pytest.raises(ForbiddenURL):
        check_url("http://0x7f.1/", resolve=False)


def test_name_that_does_not_resolve_is_left_to_the_fetch(dns: FakeDNS) -> None:
    # Refusing here would turn a DNS hiccup into a permanent 400; the connect-time guard
    # still checks whatever the name resolves to when it is fetched.
    dns.answers["gone.example"] = [[]]
    assert check_url("http://gone.example/x") == "http://gone.example/x"


def test_allowlist_matches_exact_names_and_subdomains(dns: FakeDNS) -> None:
    for name in ("www.bilibili.com", "b23.tv", "bilibili.com.evil.example", "evilb23.tv", "bilibili.com"):
        dns.answers[name] = [["93.184.215.14"]]
    allowed = ["*.bilibili.com", "B23.TV."]
    assert check_url("https://www.bilibili.com/video/BV1", allowed_hosts=allowed).startswith("https://www.")
    assert check_url("https://b23.tv/abc", allowed_hosts=allowed) == "https://b23.tv/abc"
    for refused in ("https://bilibili.com.evil.example/", "https://evilb23.tv/", "https://bilibili.com/"):
        with pytest.raises(ForbiddenURL, match="allowed list"):
            check_url(refused, allowed_hosts=allowed)


def test_allowlist_does_not_bypass_the_address_check(dns: FakeDNS) -> None:
    dns.answers["www.bilibili.com"] = [["192.168.0.10"]]
    with pytest.raises(ForbiddenURL, match=r"192\.168"):
        check_url("https://www.bilibili.com/", allowed_hosts=["*.bilibili.com"])


def test_allow_private_skips_address_checks_only(no_dns: None) -> None:
    assert check_url("http://127.0.0.1:8000/v", allow_private=True) == "http://127.0.0.1:8000/v"
    assert check_url("http://[::1]:8000/", allow_private=True) == "http://[::1]:8000/"
    assert check_url("http://localhost:8000/", allow_private=True) == "http://localhost:8000/"
    for bad in ("file:///etc/passwd", "http://evil@127.0.0.1/", "http://127.0.0.1:0/", "http://300.1.1.1/"):
        with pytest.raises(InvalidURL):
            check_url(bad, allow_private=True)


def test_max_length_is_configurable(no_dns: None) -> None:
    url = "http://93.184.215.14/" + "a" * 50
    assert check_url(url, max_length=len(url)) == url
    with pytest.raises(InvalidURL, match="longer than"):
        check_url(url, max_length=len(url) - 1)


async def test_async_variant_runs_the_same_check(dns: FakeDNS) -> None:
    dns.answers["intranet.example"] = [["10.0.0.1"]]
    with pytest.raises(ForbiddenURL):
        await check_url_async("http://intranet.example/")
    assert await check_url_async("http://93.184.215.14") == "http://93.184.215.14/"


# ------------------------------------------------------------------ addresses


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("8.8.8.8", False),
        ("93.184.215.14", False),
        ("2606:4700::1", False),
        ("::ffff:8.8.8.8", False),
        ("64:ff9b::808:808", False),
        ("2002:808:808::1", False),
        ("127.255.255.254", True),
        ("0.1.2.3", True),
        ("100.127.255.255", True),
        ("169.254.0.1", True),
        ("192.88.99.1", True),
        ("239.255.255.250", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:0:0", True),
        ("64:ff9b::c0a8:1", True),
        ("2002:a9fe:a9fe::", True),
        ("2001:2::1", True),
        ("3fff::1", True),
        ("5f00::1", True),
        ("fe80::dead:beef", True),
    ],
)
def test_is_forbidden_ip(address: str, forbidden: bool) -> None:
    assert is_forbidden_ip(ipaddress.ip_address(address)) is forbidden


def _spell(value: int, style: str) -> str:
    return {"dec": str(value), "oct": "0" + format(value, "o"), "hex": "0x" + format(value, "x")}[style]


@given(
    values=st.lists(st.integers(min_value=0, max_value=2**32), min_size=1, max_size=4),
    styles=st.lists(st.sampled_from(["dec", "oct", "hex"]), min_size=4, max_size=4),
)
@example(values=[127, 1], styles=["dec", "dec", "dec", "dec"])
@example(values=[0x7F, 1], styles=["hex", "dec", "dec", "dec"])
@example(values=[256, 0, 0, 1], styles=["dec", "dec", "dec", "dec"])
def test_numeric_hosts_parse_exactly_like_inet_aton(values: list[int], styles: list[str]) -> None:
    host = ".".join(_spell(v, s) for v, s in zip(values, styles, strict=False))
    try:
        expected = ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        with pytest.raises(InvalidURL):
            parse_ipv4_like_inet_aton(host)
        return
    assert parse_ipv4_like_inet_aton(host) == expected
    # ...and check_url judges the spelling by the address it denotes.
    if is_forbidden_ip(expected):
        with pytest.raises(ForbiddenURL):
            check_url(f"http://{host}/")
    else:
        assert check_url(f"http://{host}/") == f"http://{expected}/"


# ------------------------------------------------------------------ httpx: connect-time check


async def test_httpx_guard_refuses_a_forbidden_peer(make_site: Callable[..., Site]) -> None:
    site = make_site("127.0.0.1")
    site.page("/", "hello")
    async with guarded_async_client(allow_private=False) as client:
        with pytest.raises(ForbiddenURL, match=r"127\.0\.0\.1"):
            await client.get(site.url("/"))
    assert site.requests == []
    async with guarded_async_client(allow_private=True, timeout=5) as client:
        response = await client.get(site.url("/"))
    assert (response.status_code, response.text) == (200, "hello")


async def test_httpx_guard_defeats_dns_rebinding(make_site: Callable[..., Site], dns: FakeDNS) -> None:
    site = make_site("127.0.0.1")
    site.page("/hook", "ok")
    dns.answers["hook.example"] = [["93.184.215.14"], ["127.0.0.1"]]  # public first, then loopback
    url = f"http://hook.example:{site.port}/hook"
    assert check_url(url) == url  # the up-front check sees the public answer
    async with guarded_async_client(allow_private=False) as client:
        with pytest.raises(ForbiddenURL):
            await client.post(url, json={"msgtype": "text"})
    assert site.requests == []
    # Control: an unguarded client does follow the rebound name into the loopback server.
    async with httpx.AsyncClient(trust_env=False) as plain:
        assert (await plain.get(url)).text == "ok"
    assert site.requests == ["/hook"]


async def test_httpx_guard_checks_every_redirect_hop(make_site: Callable[..., Site]) -> None:
    public, private = make_site("127.0.0.1"), make_site("127.0.0.2")
    private.page("/secret", "secret")
    start = public.redirect("/go", private.url("/secret"))
    async with guarded_async_client(
        allow_private=False, is_forbidden=only_second_loopback, follow_redirects=True
    ) as client:
        with pytest.raises(ForbiddenURL, match=r"127\.0\.0\.2"):
            await client.get(start)
    assert public.requests == ["/go"]
    assert private.requests == []


@pytest.fixture
def tls_for_name(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext, Path]:
    """(server context with a certificate for tls.example, client context trusting it, CA file)."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("tls.example").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server, client, ca_file


async def test_httpx_guard_connects_to_the_checked_ip_but_verifies_tls_for_the_name(
    make_site: Callable[..., Site], dns: FakeDNS, tls_for_name: tuple[ssl.SSLContext, ssl.SSLContext, Path]
) -> None:
    server_tls, client_tls, _ = tls_for_name
    site = make_site("127.0.0.1", tls=server_tls)
    site.page("/hook", "secure")
    dns.answers["tls.example"] = [["127.0.0.1"]]
    url = f"https://tls.example:{site.port}/hook"
    async with guarded_async_client(allow_private=False, is_forbidden=only_second_loopback, verify=client_tls) as c:
        response = await c.get(url)
    assert response.text == "secure"
    assert dns.lookups == ["tls.example"]  # one lookup: the connection went to the checked address
    async with guarded_async_client(allow_private=False, verify=client_tls) as client:
        with pytest.raises(ForbiddenURL):
            await client.get(url)


def test_httpx_guard_refuses_proxies_and_transports() -> None:
    for kwargs in ({"proxy": "http://10.0.0.1:3128"}, {"transport": httpx.AsyncHTTPTransport()}, {"mounts": {}}):
        with pytest.raises(TypeError):
            guarded_async_client(allow_private=False, **kwargs)


# ------------------------------------------------------------------ yt-dlp: connect-time check


def test_ytdlp_guard_refuses_a_forbidden_page_and_allows_it_when_private_is_allowed(
    make_site: Callable[..., Site],
) -> None:
    site = make_site("127.0.0.1")
    page = site.page("/", video_page("Talk", "/talk.mp4"))
    with GuardedYoutubeDL(QUIET, allow_private=False) as ydl, pytest.raises(DownloadError) as info:
        ydl.extract_info(page, download=False)
    cause = forbidden_cause(info.value)
    assert isinstance(cause, ForbiddenURL)
    assert "127.0.0.1" in cause.message
    assert site.requests == []
    with GuardedYoutubeDL(QUIET, allow_private=True) as ydl:
        video = ydl.extract_info(page, download=False)
    assert (video["extractor"], video["title"], video["url"]) == ("html5", "Talk (1)", site.url("/talk.mp4"))


def test_ytdlp_guard_defeats_dns_rebinding(make_site: Callable[..., Site], dns: FakeDNS) -> None:
    site = make_site("127.0.0.1")
    site.page("/v", video_page("Rebound", "/v.mp4"))
    dns.answers["videos.example"] = [["93.184.215.14"], ["127.0.0.1"]]
    url = f"http://videos.example:{site.port}/v"
    assert check_url(url) == url
    with GuardedYoutubeDL(QUIET, allow_private=False) as ydl, pytest.raises(DownloadError) as info:
        ydl.extract_info(url, download=False)
    assert isinstance(forbidden_cause(info.value), ForbiddenURL)
    assert site.requests == []
    # Control: plain yt-dlp (its requests handler) follows the rebound name.
    with YoutubeDL({**QUIET, "proxy": ""}) as plain:
        assert plain.extract_info(url, download=False)["title"] == "Rebound (1)"
    assert site.requests == ["/v"]


@pytest.mark.parametrize("hop", ["redirect", "media", "subtitles"])
def test_ytdlp_guard_checks_redirects_media_and_subtitles(
    hop: str, make_site: Callable[..., Site], tmp_path: Path
) -> None:
    public, private = make_site("127.0.0.1"), make_site("127.0.0.2")
    public.file("/talk.mp4", b"\x00" * 2048, "video/mp4")
    public.file("/talk.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", "text/vtt")
    private.page("/inner", video_page("Inner", public.url("/talk.mp4")))
    private.file("/secret.mp4", b"\x01" * 2048, "video/mp4")
    private.file("/secret.vtt", b"WEBVTT\n", "text/vtt")
    if hop == "redirect":
        start = public.redirect("/s/abc", private.url("/inner"))
    elif hop == "media":
        start = public.page("/v", video_page("Media", private.url("/secret.mp4")))
    else:
        start = public.page("/v", video_page("Subs", "/talk.mp4", subtitles=private.url("/secret.vtt")))
    params = {**QUIET, "outtmpl": str(tmp_path / "%(id)s.%(ext)s"), "writesubtitles": True}
    with (
        GuardedYoutubeDL(params, allow_private=False, is_forbidden=only_second_loopback) as ydl,
        pytest.raises(DownloadError) as info,
    ):
        ydl.extract_info(start, download=True)
    assert "127.0.0.2" in str(info.value)
    assert private.requests == []


def test_ytdlp_guard_downloads_media_and_subtitles_it_may_reach(make_site: Callable[..., Site], tmp_path: Path) -> None:
    site = make_site("127.0.0.1")
    media = bytes(range(256)) * 64
    site.file("/talk.mp4", media, "video/mp4")
    site.file("/talk.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n", "text/vtt")
    site.redirect("/s/1", "/talk.html")
    site.page("/talk.html", video_page("Talk", "/talk.mp4", subtitles="/talk.vtt"))
    params = {**QUIET, "outtmpl": str(tmp_path / "out.%(ext)s"), "writesubtitles": True}
    with GuardedYoutubeDL(params, allow_private=False, is_forbidden=only_second_loopback) as ydl:
        ydl.extract_info(site.url("/s/1"), download=True)
    assert (tmp_path / "out.mp4").read_bytes() == media
    assert "hello" in (tmp_path / "out.en.vtt").read_text()
    assert site.requests[:2] == ["/s/1", "/talk.html"]


def test_ytdlp_guard_keeps_tls_verification_for_the_name(
    make_site: Callable[..., Site],
    dns: FakeDNS,
    tls_for_name: tuple[ssl.SSLContext, ssl.SSLContext, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_tls, _, ca_file = tls_for_name
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # read by the system store (no-certifi)
    site = make_site("127.0.0.1", tls=server_tls)
    site.page("/v", video_page("Secure", "/v.mp4"))
    dns.answers["tls.example"] = [["127.0.0.1"]]
    params = {**QUIET, "compat_opts": ["no-certifi"]}
    with GuardedYoutubeDL(params, allow_private=False, is_forbidden=only_second_loopback) as ydl:
        video = ydl.extract_info(f"https://tls.example:{site.port}/v", download=False)
    assert video["title"] == "Secure (1)"
    dns.answers["other.example"] = [["127.0.0.1"]]  # same server, a name its certificate lacks
    with (
        GuardedYoutubeDL(params, allow_private=False, is_forbidden=only_second_loopback) as ydl,
        pytest.raises(DownloadError, match=r"(?i)certificate"),
    ):
        ydl.extract_info(f"https://other.example:{site.port}/v", download=False)


def test_ytdlp_guard_does_not_follow_a_redirect_to_ftp(make_site: Callable[..., Site]) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    ftp_url = f"ftp://127.0.0.1:{listener.getsockname()[1]}/video.mp4"
    site = make_site("127.0.0.1")
    start = site.redirect("/go", ftp_url)
    try:
        with GuardedYoutubeDL(QUIET, allow_private=True) as ydl, pytest.raises(DownloadError):
            ydl.extract_info(start, download=False)
        with pytest.raises(TimeoutError):  # ftplib (outside the guard) never connected
            listener.accept()
    finally:
        listener.close()
    assert site.requests == ["/go"]


def _format(**fields: Any) -> dict[str, Any]:
    return {"format_id": "f", "ext": "mp4", "id": "x", "title": "x", "http_headers": {}, **fields}


@pytest.mark.parametrize(
    "info",
    [
        _format(url="rtmp://93.184.215.14/live/x", protocol="rtmp"),
        _format(url="http://93.184.215.14/live.m3u8", protocol="m3u8_native", is_live=True),
        _format(url="wss://93.184.215.14/x", protocol="websocket_frag"),
    ],
    ids=["rtmp", "live-hls", "websocket"],
)
def test_ytdlp_guard_refuses_downloaders_outside_python(info: dict[str, Any], tmp_path: Path) -> None:
    with GuardedYoutubeDL(QUIET, allow_private=False) as ydl, pytest.raises(DownloadError, match="SSRF guard"):
        ydl.dl(str(tmp_path / "x.mp4"), info)


def test_ytdlp_guard_keeps_ffmpeg_off_the_network_when_hls_falls_back_to_it(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    # SAMPLE-AES is beyond the native HLS downloader, which then hands the stream to ffmpeg;
    # ffmpeg's own HTTP client would bypass the guard, so it may read local inputs only.
    site = make_site("127.0.0.1")
    site.file(
        "/v.m3u8",
        (
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n"
            f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="{site.url("/key")}"\n#EXTINF:4.0,\n/seg0.ts\n#EXT-X-ENDLIST\n'
        ).encode(),
        "application/vnd.apple.mpegurl",
    )
    page = site.page("/v", video_page("Hls", "/v.m3u8"))
    params = {
        **QUIET,
        "outtmpl": str(tmp_path / "out.%(ext)s"),
        "ffmpeg_location": imageio_ffmpeg.get_ffmpeg_exe(),
    }
    with GuardedYoutubeDL(params, allow_private=True) as ydl, pytest.raises(DownloadError):
        ydl.extract_info(page, download=True)
    assert "/v.m3u8" in site.requests
    assert "/seg0.ts" not in site.requests
    assert "/key" not in site.requests


def test_forbidden_cause_is_none_for_other_errors() -> None:
    assert forbidden_cause(DownloadError("ERROR: HTTP Error 404")) is None
    assert forbidden_cause(RuntimeError("x")) is None
    wrapped = DownloadError("ERROR: x", exc_info=(ForbiddenURL, ForbiddenURL("nope"), None))
    assert isinstance(forbidden_cause(wrapped), VidscribeError)
