"""Settings of the media stage: link resolution, subtitles, download, cookies and proxies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from actors.net.proxies import YTDLP_PROXY_SCHEMES, ProxyRoutes, YtdlpProxy
from actors.util.config import split_csv

# The names the refusal messages point the operator at.
COOKIES_ENV = "VIDSCRIBE_MEDIA__COOKIES_FILE"
PROXY_ENV = "VIDSCRIBE_MEDIA__PROXY"
PROXY_RULES_ENV = "VIDSCRIBE_MEDIA__PROXY_RULES"


class MediaSettings(BaseModel):
    """Link resolution, subtitles and download."""

    # A rejected proxy value may hold a password: errors say what is wrong, never the value.
    model_config = ConfigDict(hide_input_in_errors=True)

    subtitle_languages: Annotated[list[str], NoDecode] = Field(
        default=["zh-Hans", "zh", "zh-CN", "zh-Hant", "zh-TW", "en"],
        description="Subtitle languages to use instead of ASR, best first (yt-dlp language codes).",
    )
    auto_captions: bool = Field(
        True, description="Also use the platform's automatic (AI) captions when no manual subtitles match."
    )
    max_duration_s: float = Field(
        4 * 3600, description="Longest video accepted, in seconds; a longer one fails with video_too_long."
    )
    max_download_bytes: int = Field(
        1024**3,
        description="Largest media file downloaded, in bytes, checked before and during the download "
        "(file_too_large beyond).",
    )
    socket_timeout_s: float = Field(
        30, description="yt-dlp's network timeout, in seconds, for one read during resolution and download."
    )
    cookies_file: Path | None = Field(
        None,
        description="A Netscape cookies.txt (what browser cookie-export extensions write) sent with every "
        "request yt-dlp makes (page, API, subtitles, media), per domain as the file says; read only, each "
        "use works on a private copy. Unset: no cookies. Sites that answer 412/403 or want a login "
        "(Bilibili, Douyin) need one.",
    )
    proxy: YtdlpProxy = Field(
        None,
        description="Proxy for every request yt-dlp makes: http://, socks5:// or socks5h:// (the proxy "
        "resolves names), socks4://, socks4a://; user:password@ allowed. Unset: direct.",
    )
    proxy_rules: Annotated[list[SecretStr], NoDecode] = Field(
        default=[],
        description="Per-site routes, host-suffix=proxy-URL or host-suffix=direct, comma-separated "
        "(youtube.com=socks5h://127.0.0.1:1080,bilibili.com=direct); the longest matching suffix wins, "
        "other hosts use proxy.",
    )
    max_playlist_items: int = Field(
        20, ge=1, description="Most items of a playlist one request may ask for with options.playlist_items."
    )
    site_retry_delays_s: Annotated[list[float], NoDecode] = Field(
        default=[15, 60, 180],
        description="Seconds to wait before each retry of a site that answers 429 Too Many Requests; after "
        "the last, the task fails with rate_limited_by_site.",
    )

    @field_validator("subtitle_languages", "proxy_rules", "site_retry_delays_s", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return split_csv(value)

    @field_validator("proxy_rules")
    @classmethod
    def _check_rules(cls, value: list[SecretStr]) -> list[SecretStr]:
        ProxyRoutes.parse(None, [rule.get_secret_value() for rule in value], YTDLP_PROXY_SCHEMES)
        return value

    def proxy_routes(self) -> ProxyRoutes:
        """The proxy of each request yt-dlp makes, from `proxy` and `proxy_rules`."""
        default = self.proxy.get_secret_value() if self.proxy else None
        rules = [rule.get_secret_value() for rule in self.proxy_rules]
        return ProxyRoutes.parse(default, rules, YTDLP_PROXY_SCHEMES)
