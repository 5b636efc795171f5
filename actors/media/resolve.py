"""Link resolution: what a video link points at (title, duration, subtitle tracks, formats),
without downloading any media. yt-dlp used as a library.

Plain module (no Ray). Every URL the service fetches for a user link goes through the
SSRF guard first (`check_url`: the link itself and the page it redirected to) and every
connection yt-dlp opens is checked again at connect time (`GuardedYoutubeDL`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import yt_dlp
from pydantic import BaseModel

from actors.domain.errors import DownloadError, FileTooLarge, NoMedia, VideoTooLong
from actors.domain.video import VideoInfo
from actors.media.formats import choose_format, formats_of, stated_size
from actors.media.settings import MediaSettings
from actors.media.subtitle_tracks import SubtitleTrack, choose_subtitles
from actors.media.ytdlp import DERIVED_URL_MAX, typed_errors, ydl_params
from actors.net.urlguard import check_url
from actors.net.ytdlp_guard import GuardedYoutubeDL

log = logging.getLogger(__name__)


# Extractors whose ids are derived from the URL's last path segment ("index-1", "video"):
# unique only together with the page they came from.
_URL_DERIVED_ID_EXTRACTORS = {"generic", "html5"}


class Probe(BaseModel):
    """What resolving a link found: the video, usable subtitle tracks (best first), yt-dlp's info."""

    video: VideoInfo
    subtitles: list[SubtitleTrack]
    info: dict[str, Any]  # yt-dlp's sanitized (JSON-safe) info dict, replayed by download_audio


def probe(url: str, settings: MediaSettings, *, allow_private: bool = False) -> Probe:
    """Resolve `url` without downloading media; raises the typed errors of actors.errors."""
    checked = check_url(url, allow_private=allow_private)
    with typed_errors(checked), GuardedYoutubeDL(_probe_params(settings), allow_private=allow_private) as ydl:
        raw = ydl.extract_info(checked, download=False)
    entry = _first_video(raw)
    if entry is None:
        raise NoMedia(f"no video or audio found at {checked}")
    info: dict[str, Any] = yt_dlp.YoutubeDL.sanitize_info(entry, remove_private_keys=True)
    # Redirects may have led somewhere else: the final page must pass the guard too.
    webpage_url = str(info.get("webpage_url") or checked)
    check_url(webpage_url, allow_private=allow_private, max_length=DERIVED_URL_MAX)

    if info.get("is_live"):
        raise DownloadError("live streams cannot be transcribed; try again once the broadcast is over")
    video = _video_info(info, webpage_url)
    if video.duration is not None and video.duration > settings.max_duration_s:
        raise VideoTooLong(f"video is {video.duration:.0f} s long; the limit is {settings.max_duration_s:.0f} s")
    chosen = choose_format(formats_of(info), video.duration)
    if chosen is None:
        raise NoMedia(f"{webpage_url} has no downloadable audio")
    size = stated_size(chosen)
    if size is not None and size > settings.max_download_bytes:
        raise FileTooLarge(f"media is about {size} bytes; the limit is {settings.max_download_bytes} bytes")
    return Probe(video=video, subtitles=choose_subtitles(info, settings), info=info)


def _probe_params(settings: MediaSettings) -> dict[str, Any]:
    # Some extractors (Bilibili, ...) only list subtitles when asked to "write" them; with
    # download=False nothing is written.
    return ydl_params(settings, writesubtitles=True, writeautomaticsub=settings.auto_captions)


def _first_video(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """The video of an extraction result; for a playlist, its first entry."""
    while raw is not None and raw.get("_type") == "playlist":
        raw = next((e for e in raw.get("entries") or [] if e), None)
    return raw


def _video_info(info: dict[str, Any], webpage_url: str) -> VideoInfo:
    extractor = str(info.get("extractor") or "")
    video_id = str(info.get("id") or "")
    title = str(info.get("title") or "")
    if extractor.lower() in _URL_DERIVED_ID_EXTRACTORS:
        # "index-1" would be shared by every site's index page: qualify it with the page.
        page = webpage_url.partition("#")[0]
        video_id = f"{video_id}@{hashlib.sha256(page.encode()).hexdigest()[:12]}"
        title = re.sub(r" \(1\)$", "", title)  # html5 numbers entries: "Title (1)"
    duration = info.get("duration")
    author = info.get("uploader") or info.get("channel") or info.get("creator")
    return VideoInfo(
        url=webpage_url,
        platform=str(info.get("extractor_key") or extractor or "unknown"),
        video_id=video_id,
        title=title,
        author=str(author) if author else None,
        duration=float(duration) if duration else None,
    )
