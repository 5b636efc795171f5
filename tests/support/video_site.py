"""Pytest plugin: a local "video site" on 127.0.0.1 that yt-dlp resolves like a real one.

Pages hold `<video>` (and optionally `<track kind="subtitles">`), files are served with
optional throttling and Content-Length, and every request path is recorded, so tests can
check what the service fetched (e.g. "the media file was never requested"):

    site.add_video("talk", subtitles_vtt=SPEECH_EN_VTT)    # -> page URL
    site.add_file("/big.mp4", data, "video/mp4", throttle_bps=50_000, content_length=False)
    site.add_page("/empty.html", "<html>...</html>"); site.add_redirect("/s/x", "/talk.html")
    site.requests                                           # ["/talk.html", "/talk.en.vtt", ...]

Sites as they are: `add_video(..., cookie=("SESSDATA", "v"))` answers 412 to a request without
that cookie (page, subtitles and media, as Bilibili does under load), `add_geo_blocked` answers
451, `fail_first(path, [429, 429])` answers those statuses before the real one,
`add_parts` is a page of several parts (`?p=N` is the same page, as on Bilibili) and
`add_playlist` an RSS feed of video pages (a playlist, collection or channel).

The six fixed cases are `subtitles_page`, `plain_page`, `media_file`, `short_link`,
`missing` (404) and `no_media_page`. Run standalone for manual checks:
`python -m tests.support.video_site --port 8002`.
"""

from __future__ import annotations

import argparse
import html
import io
import json
import mimetypes
import re
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
SPEECH_EN_VIDEO = DATA / "speech_en.mp4"  # ~14.4 s, H.264 + AAC
SPEECH_EN_AUDIO = DATA / "speech_en.m4a"  # the same audio only
SPEECH_EN_TEXT = (DATA / "speech_en.txt").read_text(encoding="utf-8").strip()

# The words of speech_en.txt, timed roughly as espeak says them.
SPEECH_EN_VTT = """WEBVTT

00:00:00.300 --> 00:00:03.600
The quick brown fox jumps over the lazy dog.

00:00:03.900 --> 00:00:09.200
Every morning the village baker opens his shop before sunrise,

00:00:09.200 --> 00:00:14.000
and the smell of fresh bread fills the street.
"""

# Audio files whose type Python's mimetypes may not know (it depends on /etc/mime.types).
_AUDIO_TYPES = {"m4a": "audio/mp4", "ogg": "audio/ogg", "opus": "audio/ogg"}
_CHUNK = 16 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Resource:
    """One thing the site serves at a path."""

    body: bytes
    content_type: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    throttle_bps: int | None = None  # bytes per second; None = as fast as possible
    content_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    cookie: tuple[str, str] | None = None  # (name, value) a request must carry, else 412
    failures: list[int] = field(default_factory=list)  # statuses answered first, one per request


class VideoSite:
    """A threaded HTTP server with pages, media files, redirects and a request log."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None) -> None:
        self._resources: dict[str, Resource] = {}
        self._requests: list[str] = []
        self._media: dict[str, str] = {}  # video name -> its media file's path
        self._lock = threading.Lock()
        self._server = _Server((host, port), _handler_for(self))
        if tls is not None:  # https://, e.g. to reach it through a proxy's CONNECT tunnel
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="video-site", daemon=True)
        self.base_url = f"{'https' if tls else 'http'}://{host}:{self._server.server_address[1]}"
        self._add_fixed_cases()

    def start(self) -> VideoSite:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def url(self, path: str) -> str:
        """Absolute URL of `path` on this site."""
        return urljoin(self.base_url + "/", path.lstrip("/"))

    @property
    def requests(self) -> list[str]:
        """Every request path so far (query strings dropped), oldest first."""
        with self._lock:
            return list(self._requests)

    def requested(self, path_or_url: str) -> int:
        """How many times `path_or_url` was requested."""
        path = urlsplit(path_or_url).path or "/"
        return self.requests.count(path)

    def add_page(self, path: str, page: str, *, status: int = 200) -> str:
        """Serve an HTML page at `path`; returns its URL."""
        return self._add(path, Resource(page.encode(), "text/html; charset=utf-8", status=status))

    def add_file(
        self,
        path: str,
        data: bytes | Path,
        content_type: str,
        *,
        throttle_bps: int | None = None,
        content_length: bool = True,
    ) -> str:
        """Serve `data` (bytes or a file's contents) at `path`; returns its URL."""
        body = data.read_bytes() if isinstance(data, Path) else data
        return self._add(path, Resource(body, content_type, throttle_bps=throttle_bps, content_length=content_length))

    def add_redirect(self, path: str, target: str, *, status: int = 302) -> str:
        """Redirect `path` to `target` (a path or URL); returns the redirecting URL."""
        resource = Resource(b"", "text/plain", status=status, headers={"Location": self.url(target)})
        return self._add(path, resource)

    def add_video(
        self,
        name: str,
        media: bytes | Path = SPEECH_EN_VIDEO,
        subtitles_vtt: str | None = None,
        *,
        title: str | None = None,
        description: str | None = None,
        audio_only: bool | None = None,
        throttle_bps: int | None = None,
        content_length: bool = True,
        cookie: tuple[str, str] | None = None,
    ) -> str:
        """A page `/<name>.html` playing `/media/<name>.<ext>` (+ `/media/<name>.en.vtt`); returns the page URL.

        With `description`, the page carries it as sites do (`og:description`, which yt-dlp reads);
        with `cookie`, each of them answers 412 to a request without that cookie."""
        page = self._media_tag(name, media, subtitles_vtt, audio_only, throttle_bps, content_length, cookie)
        page_title = html.escape(title or f"Video {name}")
        meta = ""
        if description is not None:
            content = html.escape(description)
            meta = f"<meta name='description' content='{content}'><meta property='og:description' content='{content}'>"
        document = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{page_title}</title>{meta}</head>"
            f"<body><h1>{page_title}</h1>{page}</body></html>"
        )
        self.add_page(f"/{name}.html", document)
        self._resources[f"/{name}.html"].cookie = cookie
        return self.url(f"/{name}.html")

    def _media_tag(
        self,
        name: str,
        media: bytes | Path,
        subtitles_vtt: str | None,
        audio_only: bool | None,
        throttle_bps: int | None,
        content_length: bool,
        cookie: tuple[str, str] | None,
    ) -> str:
        """Serve `/media/<name>.<ext>` (and its .en.vtt); the `<video>`/`<audio>` tag playing it."""
        ext = media.suffix.lstrip(".").lower() if isinstance(media, Path) else "mp4"
        mime = _AUDIO_TYPES.get(ext) or mimetypes.types_map.get(f".{ext}", "video/mp4")
        if audio_only is None:
            audio_only = mime.startswith("audio/")
        tag = "audio" if audio_only else "video"
        media_path = f"/media/{name}.{ext}"
        self._media[name] = media_path
        self.add_file(media_path, media, mime, throttle_bps=throttle_bps, content_length=content_length)
        self._resources[media_path].cookie = cookie
        track = ""
        if subtitles_vtt is not None:
            vtt_path = f"/media/{name}.en.vtt"
            self.add_file(vtt_path, subtitles_vtt.encode(), "text/vtt; charset=utf-8")
            self._resources[vtt_path].cookie = cookie
            track = f'<track kind="subtitles" srclang="en" label="English" src="{vtt_path}">'
        return f"<{tag} controls src='{media_path}'>{track}</{tag}>"

    def add_parts(self, name: str, parts: list[str], *, title: str, media: Path = SPEECH_EN_AUDIO) -> str:
        """A page `/<name>.html` holding one video in `len(parts)` parts, each part a player with
        its own subtitles (`parts[i]`, WebVTT); `?p=N` links serve the same page."""
        players = "".join(
            self._media_tag(f"{name}-p{n}", media, vtt, None, None, True, None) for n, vtt in enumerate(parts, 1)
        )
        escaped = html.escape(title)
        return self.add_page(
            f"/{name}.html",
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escaped}</title></head>"
            f"<body><h1>{escaped}</h1>{players}</body></html>",
        )

    def add_playlist(self, name: str, pages: list[str], *, title: str) -> str:
        """An RSS feed `/<name>.rss` of video pages (in this order), as a channel or collection lists them."""
        items = "".join(
            f"<item><title>Item {n}</title><link>{html.escape(page)}</link></item>" for n, page in enumerate(pages, 1)
        )
        feed = (
            "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>{html.escape(title)}</title><link>{self.url('/')}</link><description>videos</description>"
            f"{items}</channel></rss>"
        )
        return self._add(f"/{name}.rss", Resource(feed.encode(), "application/rss+xml; charset=utf-8"))

    def add_geo_blocked(self, name: str) -> str:
        """A page `/<name>.html` answering 451 Unavailable For Legal Reasons, as geo-blocked videos do."""
        page = "<html><body>This video is not available in your country or region.</body></html>"
        return self.add_page(f"/{name}.html", page, status=451)

    def fail_first(self, path_or_url: str, statuses: list[int]) -> None:
        """Answer the next requests for a path with these statuses first (e.g. [429, 429])."""
        path = urlsplit(path_or_url).path or "/"
        with self._lock:
            self._resources[path].failures.extend(statuses)

    def add_described_video(
        self,
        name: str,
        media: bytes | Path = SPEECH_EN_VIDEO,
        *,
        title: str | None = None,
        author: str | None = None,
        duration_s: float | None = None,
        content_size: int | None = None,
    ) -> str:
        """A page `/<name>.html` describing `/media/<name>.mp4` with schema.org JSON-LD; returns its URL.

        yt-dlp reads title, author, duration and size from it before downloading anything,
        which is how real sites announce them. The values need not be true.
        """
        self._media[name] = f"/media/{name}.mp4"
        media_url = self.add_file(self._media[name], media, "video/mp4")
        meta: dict[str, object] = {
            "@context": "https://schema.org",
            "@type": "VideoObject",
            "name": title or f"Video {name}",
            "contentUrl": media_url,
            "encodingFormat": "video/mp4",
            "uploadDate": "2025-01-01",
        }
        if author is not None:
            meta["author"] = {"@type": "Person", "name": author}
        if duration_s is not None:
            meta["duration"] = f"PT{duration_s:g}S"
        if content_size is not None:
            meta["contentSize"] = str(content_size)
        page = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(str(meta['name']))}</title>"
            f'<script type="application/ld+json">{json.dumps(meta)}</script></head>'
            f"<body><p>Watch it in the app.</p></body></html>"
        )
        return self.add_page(f"/{name}.html", page)

    def media_path(self, name: str) -> str:
        """The path of the media file `add_video(name)` / `add_described_video(name)` serves."""
        return self._media[name]

    # The six fixed cases.
    @property
    def subtitles_page(self) -> str:
        return self.url("/subtitled.html")

    @property
    def plain_page(self) -> str:
        return self.url("/plain.html")

    @property
    def media_file(self) -> str:
        return self.url("/files/speech_en.mp4")

    @property
    def short_link(self) -> str:
        """Redirects (302) to `subtitles_page`, like a b23.tv / youtu.be link."""
        return self.url("/s/sub")

    @property
    def missing(self) -> str:
        return self.url("/gone.html")

    @property
    def no_media_page(self) -> str:
        return self.url("/article.html")

    def _add_fixed_cases(self) -> None:
        self.add_video("subtitled", subtitles_vtt=SPEECH_EN_VTT, title="A fox and a baker")
        self.add_video("plain", title="A fox without subtitles")
        self.add_file("/files/speech_en.mp4", SPEECH_EN_VIDEO, "video/mp4")
        self.add_redirect("/s/sub", "/subtitled.html")
        self.add_page(
            "/article.html",
            "<html><head><title>Just text</title></head><body><p>No video here, only words.</p></body></html>",
        )

    def _add(self, path: str, resource: Resource) -> str:
        path = "/" + path.lstrip("/")
        with self._lock:
            self._resources[path] = resource
        return self.url(path)

    def _lookup(self, raw_path: str, cookie_header: str | None) -> tuple[str, Resource | None, int | None]:
        """(path, resource, the status to answer instead: a required cookie missing, a failure queued)."""
        path = urlsplit(raw_path).path or "/"
        with self._lock:
            self._requests.append(path)
            resource = self._resources.get(path)
            if resource is None:
                return path, None, None
            if resource.cookie is not None and not _has_cookie(cookie_header, *resource.cookie):
                return path, resource, 412  # Bilibili's answer to clients without a session under load
            return path, resource, resource.failures.pop(0) if resource.failures else None


def _has_cookie(header: str | None, name: str, value: str) -> bool:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except CookieError:
        return False
    return name in jar and jar[name].value == value


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of concurrent clients (benchmarks) must not see refused connections


def _handler_for(site: VideoSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so a body without Content-Length ends at close.
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

        def _serve(self, *, send_body: bool) -> None:
            _, resource, refusal = site._lookup(self.path, self.headers.get("Cookie"))
            if resource is None:
                resource = Resource(b"<html><body>404 Not Found</body></html>", "text/html", status=404)
            elif refusal is not None:
                resource = Resource(f"<html><body>HTTP {refusal}</body></html>".encode(), "text/html", status=refusal)
            body, status, extra = resource.body, resource.status, {}
            if status == 200 and (wanted := _byte_range(self.headers.get("Range"), len(body))) is not None:
                start, end = wanted
                status, body = 206, body[start : end + 1]
                extra["Content-Range"] = f"bytes {start}-{end}/{len(resource.body)}"
            try:
                self.send_response(status)
                self.send_header("Content-Type", resource.content_type)
                self.send_header("Accept-Ranges", "bytes")
                if resource.content_length:
                    self.send_header("Content-Length", str(len(body)))
                for name, value in {**resource.headers, **extra}.items():
                    self.send_header(name, value)
                self.end_headers()
                if send_body:
                    _write(self.wfile, body, resource.throttle_bps)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (e.g. a size limit); nothing to clean up

    return Handler


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `Range: bytes=a-b` request, or None to send everything."""
    match = _RANGE.match(header or "")
    if match is None or size == 0:
        return None
    first, last = match.groups()
    if not first:  # suffix range: the last N bytes
        return max(0, size - int(last or 0)), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end else None


def _write(out: io.BufferedIOBase, body: bytes, throttle_bps: int | None) -> None:
    """Write `body`, no faster than `throttle_bps` bytes per second when set."""
    if not throttle_bps:
        out.write(body)
        return
    chunk = max(1, min(_CHUNK, throttle_bps // 10))
    started = time.monotonic()
    for sent in range(0, len(body), chunk):
        out.write(body[sent : sent + chunk])
        out.flush()
        ahead = (sent + chunk) / throttle_bps - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)


@pytest.fixture(scope="session")
def video_site() -> Iterator[VideoSite]:
    """The local video site, shared by the session; add your own videos for isolated request logs."""
    site = VideoSite().start()
    yield site
    site.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the test video site until Ctrl-C.")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    site = VideoSite(port=args.port).start()
    print(f"video site on {site.base_url}: {site.subtitles_page} {site.plain_page} {site.short_link}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        site.close()


if __name__ == "__main__":
    main()
