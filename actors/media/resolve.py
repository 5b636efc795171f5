"""Link resolution: what a video link points at (title, duration, subtitle tracks, formats),
without downloading any media. yt-dlp used as a library.

Plain module (no Ray). Every URL the service fetches for a user link goes through the
SSRF guard first (`check_url`: the link itself and the page it redirected to) and every
connection yt-dlp opens is checked again at connect time (`GuardedYoutubeDL`). A site that
answers 429 is asked again after a while (`site_retry`); parts and playlists: `listing`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import yt_dlp
from pydantic import BaseModel, Field

from actors.domain.errors import FileTooLarge, LiveNotSupported, NoMedia, VideoTooLong
from actors.domain.video import VideoInfo
from actors.media.formats import choose_format, formats_of, stated_size
from actors.media.listing import pick_video, playlist_items_option, requested_part
from actors.media.settings import MediaSettings
from actors.media.site_retry import with_site_retries
from actors.media.subtitle_tracks import SubtitleTrack, choose_subtitles
from actors.media.ytdlp import DERIVED_URL_MAX, open_ydl, typed_errors, ydl_params
from actors.net.urlguard import check_url

log = logging.getLogger(__name__)


# Extractors whose ids are derived from the URL's last path segment ("index-1", "video"):
# unique only together with the page they came from.
_URL_DERIVED_ID_EXTRACTORS = {"generic", "html5"}
# The page's own words kept with the video (stored, cached, prompted): enough for names and
# terms; a channel's boilerplate description is long and says little.
MAX_DESCRIPTION_CHARS = 1000
MAX_TAGS = 20
# live_status values with no finished recording to download yet.
_NOT_RECORDED = ("is_live", "is_upcoming", "post_live")


class Probe(BaseModel):
    """What resolving a link found: the video, usable subtitle tracks (best first), yt-dlp's info."""

    video: VideoInfo
    subtitles: list[SubtitleTrack]
    # yt-dlp's sanitized (JSON-safe) info dict, replayed by download_audio. It may hold the
    # site's cookies (yt-dlp keeps them per format): never logged, stored or shown.
    info: dict[str, Any] = Field(repr=False)


def probe(url: str, settings: MediaSettings, *, allow_private: bool = False, playlist_item: int | None = None) -> Probe:
    """Resolve `url` (its `playlist_item`, 1-based, when given) without downloading media;
    raises the typed errors of actors.domain.errors."""
    return _probe(check_url(url, allow_private=allow_private), settings, allow_private, playlist_item)


def _probe(checked: str, settings: MediaSettings, allow_private: bool, playlist_item: int | None) -> Probe:
    part = requested_part(checked) if playlist_item is None else None
    params = _probe_params(settings, playlist_item, part)
    raw = with_site_retries(lambda: _extract(checked, params, settings, allow_private), settings.site_retry_delays_s)
    pick = pick_video(raw, checked, part=part, item=playlist_item, max_items=settings.max_playlist_items)
    if pick.link is not None:  # an item of a playlist of links: resolved as a link of its own
        item_url = check_url(pick.link, allow_private=allow_private, max_length=DERIVED_URL_MAX)
        return _probe(item_url, settings, allow_private, None)
    assert pick.entry is not None
    info: dict[str, Any] = yt_dlp.YoutubeDL.sanitize_info(pick.entry, remove_private_keys=True)
    # Redirects may have led somewhere else: the final page must pass the guard too.
    webpage_url = str(info.get("webpage_url") or checked)
    check_url(webpage_url, allow_private=allow_private, max_length=DERIVED_URL_MAX)
    if info.get("is_live") or info.get("live_status") in _NOT_RECORDED:
        raise LiveNotSupported(
            f"{webpage_url} is a live stream or a premiere that has not started; send it again once the "
            "recording is available"
        )
    video = _video_info(info, webpage_url, pick.title)
    if video.duration is not None and video.duration > settings.max_duration_s:
        raise VideoTooLong(f"video is {video.duration:.0f} s long; the limit is {settings.max_duration_s:.0f} s")
    chosen = choose_format(formats_of(info), video.duration)
    if chosen is None:
        raise NoMedia(f"{webpage_url} has no downloadable audio")
    size = stated_size(chosen)
    if size is not None and size > settings.max_download_bytes:
        raise FileTooLarge(f"media is about {size} bytes; the limit is {settings.max_download_bytes} bytes")
    return Probe(video=video, subtitles=choose_subtitles(info, settings), info=info)


def _extract(url: str, params: dict[str, Any], settings: MediaSettings, allow_private: bool) -> dict[str, Any]:
    with typed_errors(url), open_ydl(settings, params, allow_private=allow_private) as ydl:
        raw = ydl.extract_info(url, download=False)
    if raw is None:
        raise NoMedia(f"no video or audio found at {url}")
    return dict(raw)


def _probe_params(settings: MediaSettings, playlist_item: int | None, part: int | None) -> dict[str, Any]:
    # Some extractors (Bilibili, ...) only list subtitles when asked to "write" them; with
    # download=False nothing is written. Entries of a playlist of links stay unresolved
    # (extract_flat): counting a channel must not resolve every video in it.
    return ydl_params(
        settings,
        writesubtitles=True,
        writeautomaticsub=settings.auto_captions,
        extract_flat="in_playlist",
        noplaylist=playlist_item is None,  # asking for items means the link is meant as a list
        playlist_items=playlist_items_option(playlist_item, part),
    )


def _video_info(info: dict[str, Any], webpage_url: str, title_override: str | None) -> VideoInfo:
    extractor = str(info.get("extractor") or "")
    video_id = str(info.get("id") or "")
    title = title_override or str(info.get("title") or "")
    if extractor.lower() in _URL_DERIVED_ID_EXTRACTORS:
        # "index-1" would be shared by every site's index page: qualify it with the page.
        page = webpage_url.partition("#")[0]
        video_id = f"{video_id}@{hashlib.sha256(page.encode()).hexdigest()[:12]}"
        title = re.sub(r" \(1\)$", "", title)  # html5 numbers entries: "Title (1)"
    duration = info.get("duration")
    author = info.get("uploader") or info.get("channel") or info.get("creator")
    tags = [str(tag) for tag in info.get("tags") or [] if tag][:MAX_TAGS]
    return VideoInfo(
        url=webpage_url,
        platform=str(info.get("extractor_key") or extractor or "unknown"),
        video_id=video_id,
        title=title,
        author=str(author) if author else None,
        duration=float(duration) if duration else None,
        description=str(info.get("description") or "")[:MAX_DESCRIPTION_CHARS],
        tags=tags,
        language=_base_language(info.get("language")),
    )


def _base_language(code: object) -> str | None:
    """ "zh-CN", "zh_Hans", "EN" -> "zh", "en": the form Whisper names languages by."""
    if not isinstance(code, str) or not code.strip():
        return None
    return re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0] or None
