"""yt-dlp as vidscribe uses it: one set of options, the operator's cookies and proxies, its
log routed to `logging`, and its errors turned into the typed errors of
`actors.domain.errors` (never raw; see `actors.media.refusals`). Plain module."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import imageio_ffmpeg
import yt_dlp
from yt_dlp.extractor import gen_extractor_classes
from yt_dlp.version import __version__ as YTDLP_VERSION

from actors.domain.errors import VidscribeError
from actors.media.cookies import private_cookie_jar
from actors.media.formats import format_selector
from actors.media.refusals import translate
from actors.media.settings import MediaSettings
from actors.net.ytdlp_guard import GuardedYoutubeDL

log = logging.getLogger(__name__)

DOWNLOAD_RETRIES = 3
# URLs a site hands out (signed CDN links, subtitle URLs) can be far longer than a link a
# user would paste; the user-facing limit applies to the input URL only.
DERIVED_URL_MAX = 16_384
_WARM_UP_URL = "https://warm-up.invalid/"  # never fetched


def warm_up() -> None:
    """Do now, once per process, what yt-dlp does lazily for the first link it sees: compile
    every extractor's URL pattern and, for a page no site extractor knows, import every
    extractor to look for embeds. About 1 s and 30 MB that would otherwise delay the first
    task of every new replica. Logs yt-dlp's version: sites change weekly, and so does it."""
    log.info("yt-dlp %s", YTDLP_VERSION)
    for extractor in gen_extractor_classes():
        extractor.suitable(_WARM_UP_URL)
    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True}) as ydl:
        try:  # a private method of yt-dlp: best effort, a newer yt-dlp may lack it
            list(ydl.get_info_extractor("Generic")._extract_embeds(_WARM_UP_URL, "<html></html>"))
        except Exception:
            log.debug("yt-dlp embed warm-up skipped", exc_info=True)


class DownloadAborted(Exception):
    """Raised inside yt-dlp's progress hook to abort a download past the size limit;
    `typed_errors` lets it through for the downloader to report."""


class _YtdlpLog:
    """yt-dlp's logger interface, routed to `logging`; its errors become our typed errors, so INFO."""

    _log = logging.getLogger(f"{__name__}.yt_dlp")

    def debug(self, message: str) -> None:
        self._log.debug("%s", message)

    def info(self, message: str) -> None:
        self._log.debug("%s", message)

    def warning(self, message: str) -> None:
        # Expected on every page without a site-specific extractor; not worth a warning.
        level = logging.DEBUG if "generic information extractor" in message else logging.WARNING
        self._log.log(level, "%s", message)

    def error(self, message: str) -> None:
        self._log.info("%s", message)


@functools.cache
def _ffmpeg() -> str:
    """The ffmpeg binary of the imageio-ffmpeg wheel: no system ffmpeg needed."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def ydl_params(settings: MediaSettings, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "logger": _YtdlpLog(),
        "quiet": True,
        "noprogress": True,
        "color": "no_color",
        "socket_timeout": settings.socket_timeout_s,
        # As a library yt-dlp does not retry at all (the CLI's 10 is an option default):
        # a reset connection or a short read resumes the download this many times.
        "retries": DOWNLOAD_RETRIES,
        "fragment_retries": DOWNLOAD_RETRIES,
        "noplaylist": True,  # a video inside a playlist link means that video
        "playlist_items": "1",  # a page with several videos: the first one
        "cachedir": False,  # nothing written to ~/.cache
        "ffmpeg_location": _ffmpeg(),
        "format": format_selector(None),  # probe() checks the choice itself, with the duration
    }
    params.update(extra)
    return params


@contextmanager
def open_ydl(settings: MediaSettings, params: dict[str, Any], *, allow_private: bool) -> Iterator[GuardedYoutubeDL]:
    """A guarded YoutubeDL with the operator's proxy routes and a private copy of the cookies file."""
    with private_cookie_jar(settings.cookies_file) as jar:
        cookies = {"cookiefile": str(jar)} if jar is not None else {}
        with GuardedYoutubeDL(
            {**params, **cookies}, allow_private=allow_private, proxies=settings.proxy_routes()
        ) as ydl:
            yield ydl


@contextmanager
def typed_errors(url: str) -> Iterator[None]:
    """Turn whatever yt-dlp raises into a typed error (ours and the size abort pass through)."""
    try:
        yield
    except (VidscribeError, DownloadAborted):
        raise
    except Exception as e:
        raise translate(e, url) from e
