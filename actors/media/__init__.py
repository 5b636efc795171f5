"""The media stage: a video link becomes video info, a subtitle transcript or an audio file.

`probe` resolves a link (no media downloaded), `fetch_subtitles` reads the platform's
subtitles, `download_audio` fetches the smallest format with audio. Every URL goes
through the SSRF guard (`actors.net`), with the operator's cookies (`cookies`) and proxies;
yt-dlp's errors become typed errors that say what to do (`refusals`), a site's 429s are
waited out (`site_retry`), and parts and playlists are picked in `listing`.
"""

from actors.media.download import download_audio, media_workdir
from actors.media.resolve import Probe, probe
from actors.media.subtitle_tracks import SubtitleTrack, choose_subtitles, fetch_subtitles
from actors.media.ytdlp import DOWNLOAD_RETRIES, warm_up

__all__ = [
    "DOWNLOAD_RETRIES",
    "Probe",
    "SubtitleTrack",
    "choose_subtitles",
    "download_audio",
    "fetch_subtitles",
    "media_workdir",
    "probe",
    "warm_up",
]
