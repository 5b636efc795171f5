"""Link resolution, platform subtitles and audio download, with yt-dlp used as a library.

Plain module (no Ray). Every URL the service fetches for a user link goes through the
SSRF guard first (`check_url`: the link itself, the page it redirected to, each subtitle
track and the chosen media file), and every connection yt-dlp opens is checked again at
connect time (`GuardedYoutubeDL`: redirects, fragments, DNS rebinding). yt-dlp errors
never leave this module raw: they become the typed errors of `actors.errors`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import imageio_ffmpeg
import yt_dlp
from pydantic import BaseModel, Field
from yt_dlp.extractor import gen_extractor_classes
from yt_dlp.networking import Request
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import MEDIA_EXTENSIONS, UnsupportedError

from actors.errors import (
    DownloadError,
    FileTooLarge,
    NoMedia,
    VideoNotFound,
    VideoTooLong,
    VidscribeError,
)
from actors.guarded_net import GuardedYoutubeDL, forbidden_cause
from actors.models import Transcript, TranscriptSource, VideoInfo
from actors.subtitles import parse_subtitles
from actors.urlguard import check_url
from serve_app.settings import MediaSettings

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], None]

# URLs a site hands out (signed CDN links, subtitle URLs) can be far longer than a link a
# user would paste; the user-facing limit applies to the input URL only.
_DERIVED_URL_MAX = 16_384
DOWNLOAD_RETRIES = 3
_MAX_SUBTITLE_BYTES = 20 * 1024**2
# Extractors whose ids are derived from the URL's last path segment ("index-1", "video"):
# unique only together with the page they came from.
_URL_DERIVED_ID_EXTRACTORS = {"generic", "html5"}
_AUDIO_EXTS = frozenset(MEDIA_EXTENSIONS.audio)
_NOT_FOUND = re.compile(
    r"video unavailable|does not exist|has been (?:removed|deleted)|no longer available|\b404\b|\b410\b",
    re.IGNORECASE,
)


class SubtitleTrack(BaseModel):
    """One subtitle file a site offers for the video."""

    language: str
    ext: str  # "vtt" | "srt" | "json3"
    url: str  # "" when the extractor already fetched the file (`data`)
    automatic: bool  # machine-made captions (YouTube auto captions, Bilibili AI subtitles)
    http_headers: dict[str, str] = Field(default_factory=dict)  # what the site expects (Referer, UA)
    data: str | None = None  # the file itself, when the extractor fetched it (Bilibili converts JSON to SRT)


class Probe(BaseModel):
    """What resolving a link found: the video, usable subtitle tracks (best first), yt-dlp's info."""

    video: VideoInfo
    subtitles: list[SubtitleTrack]
    info: dict[str, Any]  # yt-dlp's sanitized (JSON-safe) info dict, replayed by download_audio


_WARM_UP_URL = "https://warm-up.invalid/"  # never fetched


def warm_up() -> None:
    """Do now, once per process, what yt-dlp does lazily for the first link it sees: compile
    every extractor's URL pattern and, for a page no site extractor knows, import every
    extractor to look for embeds. About 1 s and 30 MB that would otherwise delay the first
    task of every new replica."""
    for extractor in gen_extractor_classes():
        extractor.suitable(_WARM_UP_URL)
    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True}) as ydl:
        try:  # a private method of yt-dlp: best effort, a newer yt-dlp may lack it
            list(ydl.get_info_extractor("Generic")._extract_embeds(_WARM_UP_URL, "<html></html>"))
        except Exception:
            log.debug("yt-dlp embed warm-up skipped", exc_info=True)


def probe(url: str, settings: MediaSettings, *, allow_private: bool = False) -> Probe:
    """Resolve `url` without downloading media; raises the typed errors of actors.errors."""
    checked = check_url(url, allow_private=allow_private)
    with _typed_errors(checked), GuardedYoutubeDL(_probe_params(settings), allow_private=allow_private) as ydl:
        raw = ydl.extract_info(checked, download=False)
    entry = _first_video(raw)
    if entry is None:
        raise NoMedia(f"no video or audio found at {checked}")
    info: dict[str, Any] = yt_dlp.YoutubeDL.sanitize_info(entry, remove_private_keys=True)
    # Redirects may have led somewhere else: the final page must pass the guard too.
    webpage_url = str(info.get("webpage_url") or checked)
    check_url(webpage_url, allow_private=allow_private, max_length=_DERIVED_URL_MAX)

    if info.get("is_live"):
        raise DownloadError("live streams cannot be transcribed; try again once the broadcast is over")
    video = _video_info(info, webpage_url)
    if video.duration is not None and video.duration > settings.max_duration_s:
        raise VideoTooLong(f"video is {video.duration:.0f} s long; the limit is {settings.max_duration_s:.0f} s")
    chosen = _choose_format(_formats(info), video.duration)
    if chosen is None:
        raise NoMedia(f"{webpage_url} has no downloadable audio")
    size = _stated_size(chosen)
    if size is not None and size > settings.max_download_bytes:
        raise FileTooLarge(f"media is about {size} bytes; the limit is {settings.max_download_bytes} bytes")
    return Probe(video=video, subtitles=choose_subtitles(info, settings), info=info)


def fetch_subtitles(probe: Probe, settings: MediaSettings, *, allow_private: bool = False) -> Transcript | None:
    """The first track that downloads and parses to some text, as a transcript; None if none does."""
    with GuardedYoutubeDL(_params(settings), allow_private=allow_private) as ydl:
        for track in probe.subtitles:
            try:
                if track.data is not None:
                    text = track.data
                else:
                    check_url(track.url, allow_private=allow_private, max_length=_DERIVED_URL_MAX)
                    text = _read_limited(ydl, track, _MAX_SUBTITLE_BYTES).decode("utf-8", errors="replace")
                segments = parse_subtitles(text, track.ext)
            except Exception as e:  # one bad track must not stop the next (or the ASR fallback)
                log.warning("subtitle track %s (%s) unusable: %s", track.language, track.ext, e)
                continue
            segments = [s for s in segments if s.text.strip()]
            if segments:
                return Transcript(
                    segments=segments,
                    language=track.language,
                    duration=probe.video.duration,
                    source=TranscriptSource.SUBTITLES,
                )
            log.info("subtitle track %s (%s) is empty", track.language, track.ext)
    return None


def download_audio(
    probe: Probe,
    workdir: Path,
    settings: MediaSettings,
    *,
    on_progress: ProgressCallback | None = None,
    allow_private: bool = False,
) -> Path:
    """Download the smallest audio-only format (else the smallest with audio) into `workdir`."""
    info = copy.deepcopy(probe.info)  # yt-dlp mutates what it processes
    chosen = _choose_format(_formats(info), probe.video.duration)
    if chosen is None:
        raise NoMedia(f"{probe.video.url} has no downloadable audio")
    check_url(str(chosen.get("url")), allow_private=allow_private, max_length=_DERIVED_URL_MAX)
    watch = _DownloadWatch(settings.max_download_bytes, on_progress)
    params = _params(
        settings,
        outtmpl={"default": "media.%(ext)s"},
        paths={"home": str(workdir), "temp": str(workdir)},
        format=_format_selector(probe.video.duration),
        progress_hooks=[watch],
        overwrites=True,
        continuedl=False,
    )
    try:
        with _typed_errors(probe.video.url), GuardedYoutubeDL(params, allow_private=allow_private) as ydl:
            result = ydl.process_ie_result(info, download=True)
    except _TooLarge as e:
        raise FileTooLarge(f"media exceeds the limit of {settings.max_download_bytes} bytes ({e.args[0]})") from e
    path = _downloaded_file(result, workdir)
    duration = _audio_duration(path)
    if probe.video.duration is None and duration is not None and duration > settings.max_duration_s:
        raise VideoTooLong(f"media is {duration:.0f} s long; the limit is {settings.max_duration_s:.0f} s")
    return path


@contextmanager
def media_workdir(base: Path) -> Iterator[Path]:
    """A fresh temporary directory under `base`, deleted on exit whatever happened."""
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="media-", dir=base))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- yt-dlp plumbing ------------------------------------------------------------------


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


def _probe_params(settings: MediaSettings) -> dict[str, Any]:
    # Some extractors (Bilibili, ...) only list subtitles when asked to "write" them; with
    # download=False nothing is written.
    return _params(settings, writesubtitles=True, writeautomaticsub=settings.auto_captions)


def _params(settings: MediaSettings, **extra: Any) -> dict[str, Any]:
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
        "format": _format_selector(None),  # probe() checks the choice itself, with the duration
    }
    params.update(extra)
    return params


def _format_selector(duration: float | None) -> Callable[[dict[str, Any]], Iterator[dict[str, Any]]]:
    """A yt-dlp format selector making our choice (or any format, so that probing never fails on it)."""

    def select(ctx: dict[str, Any]) -> Iterator[dict[str, Any]]:
        formats: list[dict[str, Any]] = ctx["formats"]
        chosen = _choose_format(formats, duration)
        if chosen is not None:
            yield chosen
        elif formats:
            yield formats[-1]  # probe() then reports NoMedia itself, with a clear message

    return select


def _choose_format(formats: list[dict[str, Any]], duration: float | None) -> dict[str, Any] | None:
    """Smallest audio-only format, else smallest format that may carry audio; None if none."""
    usable = [
        f
        for f in formats
        if f.get("url") and f.get("acodec") != "none" and not f.get("has_drm") and f.get("protocol") != "mhtml"
    ]
    pool = [f for f in usable if _audio_only(f)] or usable
    if not pool:
        return None
    order = {id(f): i for i, f in enumerate(formats)}  # yt-dlp lists formats worst first

    def key(f: dict[str, Any]) -> tuple[float, bool, float, bool, float, int]:
        bitrate = _bitrate(f)
        size = _stated_size(f) or (bitrate * 125 * duration if bitrate and duration else None)
        # The original-language track first (YouTube marks it), then the smallest.
        language = -(f.get("language_preference") or 0)
        return (language, size is None, size or 0.0, bitrate is None, bitrate or 0.0, order[id(f)])

    return min(pool, key=key)


def _audio_only(fmt: dict[str, Any]) -> bool:
    """Audio without video: stated by the codecs, or (pages with plain <source> tags) by the extension."""
    vcodec = fmt.get("vcodec")
    return vcodec == "none" or (vcodec is None and fmt.get("ext") in _AUDIO_EXTS and fmt.get("ext") != "ogg")


def _formats(info: dict[str, Any]) -> list[dict[str, Any]]:
    formats = info.get("formats")
    if formats:
        return list(formats)
    return [info] if info.get("url") else []  # a single-format result is its own format


def _stated_size(fmt: dict[str, Any]) -> int | None:
    """Size in bytes as the metadata states it (exact or yt-dlp's approximation)."""
    size = fmt.get("filesize") or fmt.get("filesize_approx")
    return int(size) if size else None


def _bitrate(fmt: dict[str, Any]) -> float | None:
    """Kbit/s, when the metadata says."""
    bitrate = fmt.get("tbr") or fmt.get("abr")
    return float(bitrate) if bitrate else None


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


@contextmanager
def _typed_errors(url: str) -> Iterator[None]:
    """Turn whatever yt-dlp raises into a typed error (ours and the size abort pass through)."""
    try:
        yield
    except (VidscribeError, _TooLarge):
        raise
    except Exception as e:
        raise _translate(e, url) from e


def _translate(error: Exception, url: str) -> VidscribeError:
    """A typed error for a yt-dlp failure."""
    forbidden = forbidden_cause(error)
    if forbidden is not None:  # the connect-time guard refused a redirect or media host
        return forbidden
    chain = _causes(error)
    for exc in chain:
        if isinstance(exc, HTTPError) and exc.status in (404, 410):
            return VideoNotFound(f"{url} was not found (HTTP {exc.status})")
        if isinstance(exc, UnsupportedError):
            return NoMedia(f"no video or audio found at {url}")
    message = re.sub(r"^ERROR:\s*", "", str(error)).strip() or type(error).__name__
    if _NOT_FOUND.search(message):
        return VideoNotFound(message)
    return DownloadError(message)


def _causes(error: BaseException) -> list[BaseException]:
    """`error` and everything it wraps (yt-dlp's exc_info/cause, Python's __cause__/__context__)."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        exc = pending.pop()
        if exc is None or any(exc is s for s in seen):
            continue
        seen.append(exc)
        exc_info = getattr(exc, "exc_info", None)
        wrapped = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None
        cause = getattr(exc, "cause", None)
        pending += [exc.__cause__, exc.__context__, wrapped if isinstance(wrapped, BaseException) else None]
        pending.append(cause if isinstance(cause, BaseException) else None)
    return seen


def _read_limited(ydl: GuardedYoutubeDL, track: SubtitleTrack, limit: int) -> bytes:
    """The body of `track.url`, refusing more than `limit` bytes."""
    with ydl.urlopen(Request(track.url, headers=track.http_headers or None)) as response:
        data: bytes = response.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"subtitle file larger than {limit} bytes")
    return data


# --- subtitles choice -----------------------------------------------------------------

_EXT_PREFERENCE = {
    False: ("vtt", "srt", "json3"),
    True: ("json3", "vtt", "srt"),  # json3 auto captions are not rolling, so cleaner
}


def choose_subtitles(info: dict[str, Any], settings: MediaSettings) -> list[SubtitleTrack]:
    """Usable tracks of a yt-dlp info dict, best first: manual ones in the preferred languages
    (a preference also matches longer tags: "zh-Hans" takes "zh-Hans-CN"), then automatic ones.

    Machine translations of automatic captions (YouTube `tlang=`) are left out: a transcript
    is what was said, and ASR does better than a translation of a translation.
    """
    manual: dict[str, list[dict[str, Any]]] = {}
    automatic: dict[str, list[dict[str, Any]]] = {}
    for lang, tracks in (info.get("subtitles") or {}).items():
        # Bilibili lists its AI subtitles among the manual ones, as "ai-zh".
        if lang.lower().startswith("ai-"):
            automatic.setdefault(lang[3:], []).extend(tracks)
        else:
            manual.setdefault(lang, []).extend(tracks)
    if settings.auto_captions:
        for lang, tracks in (info.get("automatic_captions") or {}).items():
            automatic.setdefault(lang, []).extend(t for t in tracks if "tlang=" not in str(t.get("url")))
    chosen = _pick_tracks(manual, settings.subtitle_languages, automatic=False)
    if settings.auto_captions:
        chosen += _pick_tracks(automatic, settings.subtitle_languages, automatic=True)
    return chosen


def _pick_tracks(
    available: dict[str, list[dict[str, Any]]], preferred: list[str], *, automatic: bool
) -> list[SubtitleTrack]:
    chosen: list[SubtitleTrack] = []
    used: set[str] = set()
    for wanted in preferred:
        for lang in _matching_languages(wanted, available):
            if lang in used:
                continue
            used.add(lang)
            track = _best_track(available[lang], automatic)
            if track is not None:
                language = re.sub(r"-orig$", "", lang)  # YouTube: "en-orig" is the original auto track
                data = track.get("data")
                chosen.append(
                    SubtitleTrack(
                        language=language,
                        ext=track["ext"],
                        url=str(track.get("url") or ""),
                        automatic=automatic,
                        http_headers={str(k): str(v) for k, v in (track.get("http_headers") or {}).items()},
                        data=data if isinstance(data, str) and data.strip() else None,
                    )
                )
    return chosen


def _matching_languages(wanted: str, available: dict[str, Any]) -> list[str]:
    """Exact match first, then longer tags of the same language ("zh-Hans" -> "zh-Hans-CN")."""
    want = wanted.lower()
    exact = [lang for lang in available if lang.lower() == want]
    longer = [lang for lang in available if lang.lower().startswith(want + "-")]
    return exact + longer


def _best_track(tracks: list[dict[str, Any]], automatic: bool) -> dict[str, Any] | None:
    """The track in the format we parse best; each gets an "ext"."""
    by_ext: dict[str, dict[str, Any]] = {}
    for track in tracks:
        url, data = track.get("url"), track.get("data")
        if not (isinstance(url, str) and url) and not (isinstance(data, str) and data.strip()):
            continue
        ext = str(track.get("ext") or Path(str(url or "").split("?")[0]).suffix.lstrip(".")).lower()
        by_ext.setdefault(ext, {**track, "ext": ext})
    return next((by_ext[ext] for ext in _EXT_PREFERENCE[automatic] if ext in by_ext), None)


# --- download checks ------------------------------------------------------------------


class _TooLarge(Exception):
    """Raised inside yt-dlp's progress hook to abort a download past the size limit."""


class _DownloadWatch:
    """yt-dlp progress hook: reports (downloaded, total) and aborts past `limit` bytes."""

    def __init__(self, limit: int, on_progress: ProgressCallback | None) -> None:
        self._limit = limit
        self._on_progress = on_progress
        self._last = -1

    def __call__(self, status: dict[str, Any]) -> None:
        if status.get("status") not in ("downloading", "finished"):
            return
        done = int(status.get("downloaded_bytes") or 0)
        exact_total = status.get("total_bytes")
        if exact_total and exact_total > self._limit:
            raise _TooLarge(f"the server announced {exact_total} bytes")
        if done > self._limit:
            raise _TooLarge(f"aborted after {done} bytes")
        total = exact_total or status.get("total_bytes_estimate")
        if self._on_progress is not None and done > self._last:
            self._last = done
            self._on_progress(done, int(total) if total else None)


def _downloaded_file(result: dict[str, Any] | None, workdir: Path) -> Path:
    """The media file yt-dlp wrote into `workdir`."""
    for download in (result or {}).get("requested_downloads") or []:
        path = Path(str(download.get("filepath") or ""))
        if path.is_file() and path.stat().st_size > 0:
            return path
    files = [p for p in workdir.iterdir() if p.is_file() and p.stat().st_size > 0 and p.suffix != ".part"]
    if not files:
        raise DownloadError("the download produced no file")
    return max(files, key=lambda p: p.stat().st_size)


def _audio_duration(path: Path) -> float | None:
    """Duration of the file's audio in seconds (None if the container does not say).

    Raises NoMedia when the file has no audio stream, DownloadError when it is not media.
    """
    try:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                raise NoMedia("the media has no audio track")
            if container.duration:
                return float(container.duration / av.time_base)
            durations = [float(s.duration * s.time_base) for s in streams if s.duration and s.time_base]
            return max(durations, default=None)
    except av.FFmpegError as e:
        raise DownloadError(f"the downloaded file is not playable media: {e}") from e
