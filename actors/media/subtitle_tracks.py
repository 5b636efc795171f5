"""Platform subtitles: which of a video's tracks to use (languages, manual before automatic)
and fetching the first one that parses to some text. Plain module (no Ray)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from yt_dlp.networking import Request

from actors.domain.video import Transcript, TranscriptSource
from actors.media.settings import MediaSettings
from actors.media.site_retry import with_site_retries
from actors.media.subtitle_decoding import decode_subtitles
from actors.media.subtitles import parse_subtitles
from actors.media.ytdlp import DERIVED_URL_MAX, open_ydl, typed_errors, ydl_params
from actors.net.urlguard import check_url
from actors.net.ytdlp_guard import GuardedYoutubeDL

if TYPE_CHECKING:
    from actors.media.resolve import Probe

log = logging.getLogger(__name__)


_MAX_SUBTITLE_BYTES = 20 * 1024**2


class SubtitleTrack(BaseModel):
    """One subtitle file a site offers for the video."""

    language: str
    ext: str  # "vtt" | "srt" | "json3"
    url: str  # "" when the extractor already fetched the file (`data`)
    automatic: bool  # machine-made captions (YouTube auto captions, Bilibili AI subtitles)
    # Listed by yt-dlp under `automatic_captions` (YouTube-style): cues roll, each repeating
    # the previous line. Bilibili's AI subtitles are automatic but do not roll.
    automatic_captions: bool = False
    http_headers: dict[str, str] = Field(default_factory=dict)  # what the site expects (Referer, UA)
    data: str | None = None  # the file itself, when the extractor fetched it (Bilibili converts JSON to SRT)


def fetch_subtitles(
    probe: Probe,
    settings: MediaSettings,
    *,
    allow_private: bool = False,
    on_warning: Callable[[str], None] | None = None,
) -> Transcript | None:
    """The first track that downloads and parses to some text, as a transcript; None if none does.

    A track that cannot be read (not decodable, not a subtitle file) is skipped; that, and a
    track whose encoding had to be guessed, is told to `on_warning` (the task's warnings).
    """

    def warn(message: str) -> None:
        log.warning("%s", message)
        if on_warning is not None:
            on_warning(message)

    with open_ydl(settings, ydl_params(settings), allow_private=allow_private) as ydl:
        for track in probe.subtitles:
            name = f"subtitle track {track.language} ({track.ext})"
            try:
                text = (
                    track.data if track.data is not None else _download_text(ydl, track, settings, allow_private, warn)
                )
                segments = parse_subtitles(text, track.ext, automatic_captions=track.automatic_captions)
            except Exception as e:  # one bad track must not stop the next (or the ASR fallback)
                warn(f"{name} skipped: {e}")
                continue
            segments = [s for s in segments if s.text.strip()]
            if segments:
                return Transcript(
                    segments=segments,
                    language=track.language,
                    duration=probe.video.duration,
                    source=TranscriptSource.SUBTITLES,
                )
            log.info("%s is empty", name)
    return None


def _download_text(
    ydl: GuardedYoutubeDL,
    track: SubtitleTrack,
    settings: MediaSettings,
    allow_private: bool,
    warn: Callable[[str], None],
) -> str:
    """The track's file as text (a site answering 429 is asked again later); raises
    UndecodableSubtitles rather than returning U+FFFD."""
    check_url(track.url, allow_private=allow_private, max_length=DERIVED_URL_MAX)

    def read() -> bytes:
        with typed_errors(track.url):
            return _read_limited(ydl, track, _MAX_SUBTITLE_BYTES)

    decoded = decode_subtitles(with_site_retries(read, settings.site_retry_delays_s))
    if decoded.guessed:
        warn(f"subtitle track {track.language} ({track.ext}) is not Unicode; read it as {decoded.encoding} (guessed)")
    return decoded.text


def _read_limited(ydl: GuardedYoutubeDL, track: SubtitleTrack, limit: int) -> bytes:
    """The body of `track.url`, refusing more than `limit` bytes."""
    with ydl.urlopen(Request(track.url, headers=track.http_headers or None)) as response:
        data: bytes = response.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"subtitle file larger than {limit} bytes")
    return data


_ROLLING = "_vidscribe_automatic_captions"  # marks a track dict that came from `automatic_captions`

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
            automatic.setdefault(lang, []).extend(
                {**t, _ROLLING: True} for t in tracks if "tlang=" not in str(t.get("url"))
            )
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
                        automatic_captions=bool(track.get(_ROLLING)),
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
