"""Audio download: the chosen format into a scratch directory, within the size and
duration limits, with progress. Plain module (no Ray); every URL is SSRF-checked."""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av

from actors.domain.errors import DownloadError, FileTooLarge, NoMedia, VideoTooLong
from actors.media.formats import choose_format, format_selector, formats_of
from actors.media.resolve import Probe
from actors.media.settings import MediaSettings
from actors.media.site_retry import with_site_retries
from actors.media.ytdlp import DERIVED_URL_MAX, DownloadAborted, open_ydl, typed_errors, ydl_params
from actors.net.urlguard import check_url

log = logging.getLogger(__name__)


ProgressCallback = Callable[[int, int | None], None]


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
    chosen = choose_format(formats_of(info), probe.video.duration)
    if chosen is None:
        raise NoMedia(f"{probe.video.url} has no downloadable audio")
    check_url(str(chosen.get("url")), allow_private=allow_private, max_length=DERIVED_URL_MAX)
    watch = _DownloadWatch(settings.max_download_bytes, on_progress)
    params = ydl_params(
        settings,
        outtmpl={"default": "media.%(ext)s"},
        paths={"home": str(workdir), "temp": str(workdir)},
        format=format_selector(probe.video.duration),
        progress_hooks=[watch],
        overwrites=True,
        continuedl=False,
    )

    def attempt() -> dict[str, Any] | None:
        replay = copy.deepcopy(info)  # yt-dlp mutates what it processes; a retry starts afresh
        with typed_errors(probe.video.url), open_ydl(settings, params, allow_private=allow_private) as ydl:
            return ydl.process_ie_result(replay, download=True)  # type: ignore[no-any-return]

    try:
        result = with_site_retries(attempt, settings.site_retry_delays_s)
    except DownloadAborted as e:
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
            raise DownloadAborted(f"the server announced {exact_total} bytes")
        if done > self._limit:
            raise DownloadAborted(f"aborted after {done} bytes")
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
