"""yt-dlp's failures as typed errors whose messages say what to do (pure: no network).

Sites refuse in many words: HTTP statuses (401/403/412 want a login, 451 and "not available
in your country" a proxy elsewhere, 429 patience), yt-dlp's own error classes and the
messages of its extractors ("Sign in to confirm you're not a bot", "Premieres in 3 hours").
`translate` turns each into a stable code; the messages name the setting that fixes it.
yt-dlp's command-line hints (--cookies, --proxy) are dropped: a user of vidscribe has none.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from yt_dlp.cookies import CookieLoadError
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import GeoRestrictedError, UnsupportedError, UserNotLive

from actors.domain.errors import (
    AccessDenied,
    DownloadError,
    GeoBlocked,
    LiveNotSupported,
    NoMedia,
    RateLimitedBySite,
    UnsupportedURL,
    VideoNotFound,
    VidscribeError,
)
from actors.media.settings import COOKIES_ENV, PROXY_ENV, PROXY_RULES_ENV
from actors.net.ytdlp_guard import causes, forbidden_cause

_MAX_REASON = 300

_GEO = re.compile(
    r"not (?:made )?(?:this video )?available (?:in|from) your (?:country|region|location|area)"
    r"|geo[- ]?(?:restrict|block)"
    r"|(?:blocked|unavailable) in your (?:country|region)|only available in |所在地区|地区不可",
    re.IGNORECASE,
)
_RATE = re.compile(r"\b429\b|too many requests|rate[- ]?limit", re.IGNORECASE)
_ACCESS = re.compile(
    r"\b(?:401|403|412)\b|login required|\blog ?in\b|sign in|private video|video is private|members[- ]only"
    r"|channel's members|join this channel|registered users|premium|age[- ]restricted|confirm your age"
    r"|cookies|登录|大会员|充电专属",
    re.IGNORECASE,
)
_LIVE = re.compile(
    r"premiere|live event will begin|will begin in|upcoming (?:live|stream)|(?:has not|hasn't|not) started"
    r"|is (?:currently )?live|live stream|直播",
    re.IGNORECASE,
)
_NOT_FOUND = re.compile(
    r"video unavailable|does not exist|has been (?:removed|deleted)|no longer available|\b404\b|\b410\b",
    re.IGNORECASE,
)
_DRM = re.compile(r"\bDRM\b")
# yt-dlp's decorations: "ERROR: ", "[youtube] abc123: ", and its advice for the command line.
_PREFIX = re.compile(r"^(?:ERROR:\s*)?(?:\[[\w:.-]+\]\s*[\w.-]*:\s*)?")
_CLI_HINT = re.compile(
    r"[^.;]*(?:--[a-z][\w-]+|yt-dlp -U|bug report|report this issue)[^.;]*[.;]?|\s*See\s+https?://\S+[^.;]*[.;]?",
    re.IGNORECASE,
)
_USERINFO = re.compile(r"(?<=//)[^/\s@]+@")  # user:password@ of any URL in a message (proxy URLs)


def translate(error: Exception, url: str) -> VidscribeError:
    """A typed error for a yt-dlp failure on `url`."""
    forbidden = forbidden_cause(error)
    if forbidden is not None:  # the connect-time guard refused a redirect, media or proxied host
        return forbidden
    chain = causes(error)
    for exc in chain:
        typed = _by_class(exc, url)
        if typed is not None:
            return typed
    for exc in chain:
        if isinstance(exc, HTTPError) and (typed := by_status(exc.status, url)) is not None:
            return typed
    reason = site_reason(str(error))
    for pattern, refusal in _BY_MESSAGE:
        if pattern.search(reason):
            return refusal(url, reason)
    return DownloadError(reason or type(error).__name__)


def by_status(status: int, url: str) -> VidscribeError | None:
    """The refusal an HTTP status means, if it means one."""
    reason = f"HTTP {status}"
    if status in (401, 403, 412):
        return access_denied(url, reason)
    if status == 451:
        return geo_blocked(url, reason)
    if status == 429:
        return rate_limited(url, "HTTP 429 Too Many Requests")
    if status in (404, 410):
        return VideoNotFound(f"{url} was not found ({reason})")
    return None


def _by_class(exc: BaseException, url: str) -> VidscribeError | None:
    if isinstance(exc, GeoRestrictedError):
        return geo_blocked(url, site_reason(exc.msg or ""))
    if isinstance(exc, UserNotLive):
        return LiveNotSupported(f"{url} is a live channel that is not live now; send the link of a recorded video")
    if isinstance(exc, UnsupportedError):
        extractor = getattr(exc, "ie", None)
        if extractor in (None, "generic"):  # an ordinary page yt-dlp read, without a video on it
            return NoMedia(f"no video or audio found at {url}")
        return UnsupportedURL(
            f"yt-dlp's {extractor} extractor does not handle this kind of link ({url}); send the link of the "
            "video's own page, or upgrade yt-dlp if the site changed"
        )
    if isinstance(exc, CookieLoadError):
        return DownloadError(f"{COOKIES_ENV} is not a Netscape cookies.txt yt-dlp can read; export it again")
    return None


def site_reason(message: str) -> str:
    """What the site or yt-dlp said, without yt-dlp's decorations, command-line advice or any
    user:password@ of a URL; at most a few hundred characters."""
    text = _PREFIX.sub("", message.strip())
    text = _CLI_HINT.sub("", text).strip(" .;")
    text = _USERINFO.sub("***@", text)
    return text[:_MAX_REASON]


def access_denied(url: str, reason: str) -> AccessDenied:
    return AccessDenied(
        f"the site refused {url} ({reason}): it wants a logged-in session. Export the cookies of a browser "
        f"logged in to the site as a Netscape cookies.txt and set {COOKIES_ENV} to that file "
        "(or export it again if it is set: site sessions expire)."
    )


def geo_blocked(url: str, reason: str) -> GeoBlocked:
    return GeoBlocked(
        f"{url} is not available from this server's country or region ({reason}). Route the site through a "
        f"proxy in a region where it is available: {PROXY_ENV}, or a {PROXY_RULES_ENV} entry for this site."
    )


def rate_limited(url: str, reason: str) -> RateLimitedBySite:
    return RateLimitedBySite(f"the site limits how often this server may ask for {url} ({reason})")


def _live(url: str, reason: str) -> LiveNotSupported:
    return LiveNotSupported(
        f"{url} is a live stream or a premiere that has not started ({reason}); send it again once the "
        "recording is available"
    )


def _not_found(url: str, reason: str) -> VideoNotFound:
    return VideoNotFound(reason or f"{url} was not found")


def _drm(url: str, reason: str) -> NoMedia:
    return NoMedia(f"{url} is protected by DRM; its media cannot be downloaded ({reason})")


# First match wins: "Video unavailable. This video is private" is a login wall, not a 404.
_BY_MESSAGE: tuple[tuple[re.Pattern[str], Callable[[str, str], VidscribeError]], ...] = (
    (_GEO, geo_blocked),
    (_RATE, rate_limited),
    (_ACCESS, access_denied),
    (_LIVE, _live),
    (_NOT_FOUND, _not_found),
    (_DRM, _drm),
)
