"""Which of a video's formats to download: the smallest that carries the audio. Pure functions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from yt_dlp.utils import MEDIA_EXTENSIONS

_AUDIO_EXTS = frozenset(MEDIA_EXTENSIONS.audio)


def format_selector(duration: float | None) -> Callable[[dict[str, Any]], Iterator[dict[str, Any]]]:
    """A yt-dlp format selector making our choice (or any format, so that probing never fails on it)."""

    def select(ctx: dict[str, Any]) -> Iterator[dict[str, Any]]:
        formats: list[dict[str, Any]] = ctx["formats"]
        chosen = choose_format(formats, duration)
        if chosen is not None:
            yield chosen
        elif formats:
            yield formats[-1]  # probe() then reports NoMedia itself, with a clear message

    return select


def choose_format(formats: list[dict[str, Any]], duration: float | None) -> dict[str, Any] | None:
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
        size = stated_size(f) or (bitrate * 125 * duration if bitrate and duration else None)
        # The original-language track first (YouTube marks it), then the smallest.
        language = -(f.get("language_preference") or 0)
        return (language, size is None, size or 0.0, bitrate is None, bitrate or 0.0, order[id(f)])

    return min(pool, key=key)


def _audio_only(fmt: dict[str, Any]) -> bool:
    """Audio without video: stated by the codecs, or (pages with plain <source> tags) by the extension."""
    vcodec = fmt.get("vcodec")
    return vcodec == "none" or (vcodec is None and fmt.get("ext") in _AUDIO_EXTS and fmt.get("ext") != "ogg")


def formats_of(info: dict[str, Any]) -> list[dict[str, Any]]:
    formats = info.get("formats")
    if formats:
        return list(formats)
    return [info] if info.get("url") else []  # a single-format result is its own format


def stated_size(fmt: dict[str, Any]) -> int | None:
    """Size in bytes as the metadata states it (exact or yt-dlp's approximation)."""
    size = fmt.get("filesize") or fmt.get("filesize_approx")
    return int(size) if size else None


def _bitrate(fmt: dict[str, Any]) -> float | None:
    """Kbit/s, when the metadata says."""
    bitrate = fmt.get("tbr") or fmt.get("abr")
    return float(bitrate) if bitrate else None
