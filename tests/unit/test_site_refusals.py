"""Sites' refusals as stable codes with messages that say what to do; parts and playlists;
proxy routes; the cookies file used read-only; patience with 429s. Pure, offline."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import DownloadError, GeoRestrictedError, UnsupportedError

from actors.delivery.settings import WeComSettings
from actors.domain.errors import PlaylistNotSupported, RateLimitedBySite, VideoNotFound
from actors.llm.settings import LLMSettings
from actors.media.cookies import private_cookie_jar
from actors.media.listing import COUNT_LIMIT, numbered_part_title, pick_video, requested_part
from actors.media.refusals import site_reason, translate
from actors.media.settings import COOKIES_ENV, PROXY_ENV, MediaSettings
from actors.media.site_retry import with_site_retries
from actors.net.proxies import HTTPX_PROXY_SCHEMES, YTDLP_PROXY_SCHEMES, ProxyRoutes
from serve_app.settings import Settings

URL = "https://www.example.com/video/1"
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def wrapped(exc: Exception) -> DownloadError:
    """What YoutubeDL.extract_info raises: a DownloadError carrying the extractor's error."""
    return DownloadError(f"ERROR: {exc}", exc_info=(type(exc), exc, None))


def http_error(status: int) -> DownloadError:
    return wrapped(HTTPError(Response(io.BytesIO(b""), URL, {}, status=status)))


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "access_denied"),
        (403, "access_denied"),
        (412, "access_denied"),
        (451, "geo_blocked"),
        (429, "rate_limited_by_site"),
        (404, "video_not_found"),
        (410, "video_not_found"),
        (500, "download_failed"),
    ],
)
def test_http_statuses(status: int, code: str) -> None:
    assert translate(http_error(status), URL).code == code


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (
            "[youtube] abc: Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies for the "
            "authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for "
            "how to manually pass cookies",
            "access_denied",
        ),
        ("[youtube] abc: Private video. Sign in if you've been granted access to this video", "access_denied"),
        ("[youtube] abc: Join this channel to get access to members-only content like this video", "access_denied"),
        (
            "[youtube] abc: Sign in to confirm your age. This video may be inappropriate for some users.",
            "access_denied",
        ),
        ("[BiliBili] BV1: This video is only available for registered users. Use --cookies", "access_denied"),
        ("[Douyin] 7: Fresh cookies (not necessarily logged in) are needed", "access_denied"),
        (
            "[youtube] abc: Video unavailable. The uploader has not made this video available in your country",
            "geo_blocked",
        ),
        (
            "[BiliBili] BV1: This video may be deleted or geo-restricted. You might want to try a VPN or a proxy "
            "server (with --proxy)",
            "geo_blocked",
        ),
        ("unable to download video data: HTTP Error 429: Too Many Requests", "rate_limited_by_site"),
        ("[youtube] abc: Premieres in 3 hours", "live_not_supported"),
        ("[youtube] abc: This live event will begin in 2 days.", "live_not_supported"),
        ("[youtube] abc: Video unavailable. This video has been removed by the uploader", "video_not_found"),
        ("[generic] x: This video is DRM protected", "no_media"),
        ("[generic] x: unable to download webpage: connection reset", "download_failed"),
    ],
)
def test_messages(message: str, code: str) -> None:
    error = translate(DownloadError(f"ERROR: {message}"), URL)
    assert error.code == code
    assert "--" not in error.message and "yt-dlp -U" not in error.message  # no command-line advice


def test_messages_name_the_setting_that_helps() -> None:
    assert COOKIES_ENV in translate(http_error(412), URL).message
    assert PROXY_ENV in translate(http_error(451), URL).message
    geo = wrapped(GeoRestrictedError("This video is not available from your location due to geo restriction"))
    assert translate(geo, URL).code == "geo_blocked"


def test_unsupported_links_and_pages_without_media() -> None:
    page = UnsupportedError(URL)
    page.ie = "generic"  # the generic extractor read the page and found no video
    assert translate(wrapped(page), URL).code == "no_media"
    tab = UnsupportedError(URL)
    tab.ie = "youtube:tab"
    error = translate(wrapped(tab), URL)
    assert error.code == "unsupported_url" and "youtube:tab" in error.message


def test_a_proxy_password_never_reaches_a_message() -> None:
    error = translate(DownloadError("ERROR: Unable to connect to proxy http://me:hunter2@10.0.0.1:3128"), URL)
    assert "hunter2" not in error.message and "***@10.0.0.1" in error.message
    assert site_reason("ERROR: [youtube] abc: Premieres in 3 hours") == "Premieres in 3 hours"


def test_the_readme_documents_every_code() -> None:
    for code in (
        "access_denied",
        "geo_blocked",
        "rate_limited_by_site",
        "live_not_supported",
        "unsupported_url",
        "video_not_found",
        "no_media",
        "video_too_long",
        "file_too_large",
        "playlist_not_supported",
    ):
        assert f"| `{code}` |" in README, code


# ------------------------------------------------------------------ parts and playlists


def test_part_links_and_titles() -> None:
    assert requested_part("https://www.bilibili.com/video/BV1x?p=3&t=5") == 3
    assert requested_part("https://www.bilibili.com/video/BV1x?p=0") is None
    assert requested_part("https://www.bilibili.com/video/BV1x") is None
    # yt-dlp's Bilibili extractor numbers the title itself: "Title p03 Part name".
    assert numbered_part_title("Cooking class p03 Sauces", 3) == "Cooking class – P3 Sauces"
    assert numbered_part_title("Cooking class", 3) == "Cooking class – P3"


def inline_parts(count: int) -> dict[str, Any]:
    return {
        "_type": "playlist",
        "title": "Talk",
        "entries": [{"id": f"p{n}", "title": f"Talk ({n})"} for n in range(1, count + 1)],
    }


def links(count: int, stated: int | None = None) -> dict[str, Any]:
    entries = [{"_type": "url", "url": f"https://v.example/{n}"} for n in range(1, count + 1)]
    return {"_type": "playlist", "title": "List", "entries": entries, "playlist_count": stated}


def test_a_part_of_a_page_is_titled_with_its_number() -> None:
    raw = inline_parts(3)
    raw["entries"] = raw["entries"][1:2]  # the probe asked yt-dlp for part 2 only
    pick = pick_video(raw, URL + "?p=2", part=2, item=None, max_items=20)
    assert pick.entry is not None and pick.entry["id"] == "p2" and pick.title == "Talk – P2"
    named = {"_type": "playlist", "title": "Talk", "entries": [{"id": "p2", "title": "Questions"}]}
    assert pick_video(named, URL, part=2, item=None, max_items=20).title == "Talk – P2 Questions"


def test_a_list_of_links_is_refused_with_its_size() -> None:
    with pytest.raises(PlaylistNotSupported, match=r"of 3 items.*\"1-3\", at most 20"):
        pick_video(links(3), URL, part=None, item=None, max_items=20)
    with pytest.raises(PlaylistNotSupported, match="of 250 items"):
        pick_video(links(COUNT_LIMIT, stated=250), URL, part=None, item=None, max_items=20)
    with pytest.raises(PlaylistNotSupported, match=f"at least {COUNT_LIMIT} items"):
        pick_video(links(COUNT_LIMIT), URL, part=None, item=None, max_items=20)
    assert pick_video(links(1), URL, part=None, item=2, max_items=20).link == "https://v.example/1"


def test_an_item_a_link_does_not_have() -> None:
    with pytest.raises(VideoNotFound, match="no item 2"):
        pick_video({"id": "x", "title": "One video"}, URL, part=None, item=2, max_items=20)
    empty = {"_type": "playlist", "entries": [], "playlist_count": 3}
    with pytest.raises(VideoNotFound, match="holds 3"):
        pick_video(empty, URL, part=None, item=5, max_items=20)


# ------------------------------------------------------------------ proxies and secrets


def test_proxy_routes() -> None:
    routes = ProxyRoutes.parse(
        "http://proxy.internal:3128",
        ["youtube.com=socks5h://u:p@127.0.0.1:1080", "*.bilibili.com=direct", "music.youtube.com=direct"],
        YTDLP_PROXY_SCHEMES,
    )
    assert routes.proxy_for("www.youtube.com") == "socks5h://u:p@127.0.0.1:1080"
    assert routes.proxy_for("music.youtube.com") is None  # the longest suffix wins
    assert routes.proxy_for("www.bilibili.com.") is None
    assert routes.proxy_for("notyoutube.com") == "http://proxy.internal:3128"
    assert "u:p" not in repr(routes)
    assert not ProxyRoutes().enabled and routes.enabled


@pytest.mark.parametrize(
    "env",
    [
        {"VIDSCRIBE_MEDIA__PROXY": "https://me:hunter2@proxy:443"},  # TLS to the proxy: not for yt-dlp's urllib
        {"VIDSCRIBE_MEDIA__PROXY": "socks5://me:hunter2@"},
        {"VIDSCRIBE_MEDIA__PROXY_RULES": "youtube.com=ftp://me:hunter2@proxy"},
        {"VIDSCRIBE_MEDIA__PROXY_RULES": "youtube.com socks5://me:hunter2@proxy"},
        {"VIDSCRIBE_LLM__PROXY": "ftp://me:hunter2@proxy"},
        {"VIDSCRIBE_WECOM__PROXY": "ftp://me:hunter2@proxy"},
    ],
)
def test_a_bad_proxy_is_refused_without_showing_it(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("section", [MediaSettings, LLMSettings, WeComSettings], ids=lambda c: c.__name__)
def test_a_section_alone_never_shows_a_refused_proxy(section: type[BaseModel]) -> None:
    # The deployments validate their own section from the config they were given.
    with pytest.raises(ValidationError) as refused:
        section(proxy="ftp://me:hunter2@proxy")
    assert "hunter2" not in str(refused.value)


def test_proxies_are_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDSCRIBE_MEDIA__PROXY", "socks5h://me:hunter2@127.0.0.1:1080")
    monkeypatch.setenv("VIDSCRIBE_MEDIA__PROXY_RULES", "bilibili.com=direct,youtube.com=http://me:hunter2@p:3128")
    monkeypatch.setenv("VIDSCRIBE_LLM__PROXY", "http://me:hunter2@127.0.0.1:3128")
    monkeypatch.setenv("VIDSCRIBE_WECOM__PROXY", "https://me:hunter2@127.0.0.1:3129")
    settings = Settings()
    assert "hunter2" not in repr(settings) and "hunter2" not in settings.model_dump_json()
    assert settings.media.proxy_routes().proxy_for("www.youtube.com") == "http://me:hunter2@p:3128"
    assert set(HTTPX_PROXY_SCHEMES) >= {"http", "https", "socks5"}


def test_the_cookies_file_is_copied_and_the_copy_removed(tmp_path: Path) -> None:
    original = tmp_path / "cookies.txt"
    original.write_text("# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tTRUE\t0\tSESSDATA\tsecret\n")
    with private_cookie_jar(original) as copy:
        assert copy is not None and copy != original and copy.read_text() == original.read_text()
        assert copy.stat().st_mode & 0o077 == 0  # readable by this user only
        copy.write_text("what yt-dlp writes back")
    assert not copy.exists()
    assert "secret" in original.read_text()
    with private_cookie_jar(tmp_path / "missing.txt") as none, private_cookie_jar(None) as unset:
        assert none is None and unset is None


def test_a_busy_site_is_asked_again_after_each_delay() -> None:
    answers: list[object] = [RateLimitedBySite("busy"), RateLimitedBySite("busy"), "ok"]
    slept: list[float] = []

    def call() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert with_site_retries(call, [1, 2, 3], sleep=slept.append) == "ok"
    assert slept == [1, 2]
    always: list[float] = []
    with pytest.raises(RateLimitedBySite, match="still refused after 2 retries over 3 s"):
        with_site_retries(lambda: (_ for _ in ()).throw(RateLimitedBySite("busy")), [1, 2], sleep=always.append)
    assert always == [1, 2]


def test_media_settings_defaults_keep_everything_direct() -> None:
    settings = MediaSettings()
    assert settings.cookies_file is None and not settings.proxy_routes().enabled
