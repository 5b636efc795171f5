"""Typed errors with stable codes that the API and task records expose."""

from __future__ import annotations


class VidscribeError(Exception):
    """Base of every domain error; `code` is stable, `message` is for humans."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, code: str | None = None) -> None:
        # Constructor args go to super() so the error pickles across Ray processes.
        super().__init__(message, code)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidURL(VidscribeError):
    """The URL is malformed, not http(s), or too long."""

    code = "invalid_url"
    http_status = 400


class ForbiddenURL(VidscribeError):
    """The URL points at a host the SSRF guard refuses."""

    code = "forbidden_url"
    http_status = 400


class VideoNotFound(VidscribeError):
    """The page or media does not exist (HTTP 404 and similar)."""

    code = "video_not_found"
    http_status = 400


class NoMedia(VidscribeError):
    """The page exists but holds no video or audio yt-dlp can use."""

    code = "no_media"
    http_status = 400


class VideoTooLong(VidscribeError):
    """The video is longer than `media.max_duration_s`."""

    code = "video_too_long"
    http_status = 400


class FileTooLarge(VidscribeError):
    """The media file is larger than `media.max_download_bytes`."""

    code = "file_too_large"
    http_status = 400


class AccessDenied(VidscribeError):
    """The site wants a logged-in session (HTTP 401/403/412, login walls, private or members-only)."""

    code = "access_denied"
    http_status = 403


class GeoBlocked(VidscribeError):
    """The site does not serve the video to this server's country or region."""

    code = "geo_blocked"
    http_status = 451


class RateLimitedBySite(VidscribeError):
    """The site kept answering HTTP 429 Too Many Requests, retries with backoff included."""

    code = "rate_limited_by_site"
    http_status = 429


class LiveNotSupported(VidscribeError):
    """A live stream, or a premiere that has not started: there is no recording to transcribe yet."""

    code = "live_not_supported"
    http_status = 400


class UnsupportedURL(VidscribeError):
    """A site yt-dlp knows, but a kind of link its extractor does not handle."""

    code = "unsupported_url"
    http_status = 400


class PlaylistNotSupported(VidscribeError):
    """The link is a playlist, collection or channel, and no items were asked for."""

    code = "playlist_not_supported"
    http_status = 400


class DownloadError(VidscribeError):
    """Resolution or download failed for another reason (network, corrupt data)."""

    code = "download_failed"
    http_status = 502


class TranscriptionError(VidscribeError):
    """Speech recognition failed or produced nothing usable."""

    code = "transcription_failed"
    http_status = 500


class NoSpeech(TranscriptionError):
    """The audio holds no speech (silence, noise, music): nothing to transcribe."""

    code = "no_speech"
    http_status = 400


class LLMError(VidscribeError):
    """The LLM kept failing for one step (after retries)."""

    code = "llm_failed"
    http_status = 502


class TaskCancelled(VidscribeError):
    """The task was cancelled: whoever works on it stops at its next step and writes nothing more."""

    code = "cancelled"
    http_status = 409


class DeliveryError(VidscribeError):
    """WeCom refused a message; `errcode` is WeCom's own code when there is one."""

    code = "delivery_failed"
    http_status = 502

    def __init__(self, message: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.args = (message, errcode)
        self.errcode = errcode

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.message, self.errcode))
