"""Which proxy carries a request: the operator's proxy and per-site rules (host suffix -> proxy
or direct). Pure data; the yt-dlp guard asks `ProxyRoutes.proxy_for(host)` on every request.

A proxy is operator configuration and trusted: the connection to it is never SSRF-checked.
The target of every request sent through it still is (`actors.net.ytdlp_guard`). Proxy URLs
may hold a password, so no message or repr here ever shows one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, SecretStr

# What yt-dlp's urllib handler can speak to a proxy (TLS to the proxy itself is not among them).
YTDLP_PROXY_SCHEMES = ("http", "socks4", "socks4a", "socks5", "socks5h")
# httpx's (socks needs the `socksio` package).
HTTPX_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
DIRECT = "direct"


def check_proxy_url(url: str, schemes: Iterable[str]) -> str:
    """`url` when it names a proxy host with one of `schemes`; ValueError (without the URL) otherwise."""
    allowed = tuple(schemes)
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  # raises ValueError on a bad port
    except ValueError:
        raise ValueError("proxy URL is malformed") from None
    if parts.scheme.lower() not in allowed:
        raise ValueError(f"proxy scheme {parts.scheme.lower()!r} is not one of {', '.join(allowed)}")
    if not parts.hostname:
        raise ValueError("proxy URL has no host")
    return url.strip()


def _proxy_setting(schemes: tuple[str, ...]) -> AfterValidator:
    """Checks an optional secret proxy URL setting (the error never shows the value)."""

    def check(value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_proxy_url(value.get_secret_value(), schemes)
        return value

    return AfterValidator(check)


# Setting types: a proxy for yt-dlp's requests, and one for an httpx client (LLM, WeCom).
YtdlpProxy = Annotated[SecretStr | None, _proxy_setting(YTDLP_PROXY_SCHEMES)]
HttpxProxy = Annotated[SecretStr | None, _proxy_setting(HTTPX_PROXY_SCHEMES)]


def normalise_suffix(suffix: str) -> str:
    """ "*.YouTube.com." -> "youtube.com"."""
    return suffix.strip().lower().removeprefix("*.").removeprefix(".").removesuffix(".")


@dataclass(frozen=True, repr=False)
class ProxyRoutes:
    """The proxy for each host: the longest matching rule, else `default`; None means direct."""

    default: str | None = None
    rules: tuple[tuple[str, str | None], ...] = ()  # (host suffix, proxy URL or None), longest suffix first

    @classmethod
    def parse(cls, default: str | None, rules: Iterable[str], schemes: Iterable[str]) -> ProxyRoutes:
        """From the settings: `default` a proxy URL or None, each rule "suffix=proxy URL" or "suffix=direct"."""
        allowed = tuple(schemes)
        parsed: list[tuple[str, str | None]] = []
        for rule in rules:
            suffix, sep, target = rule.partition("=")
            suffix = normalise_suffix(suffix)
            if not sep or not suffix or not target.strip():
                raise ValueError("a proxy rule is written host-suffix=proxy-URL or host-suffix=direct")
            if target.strip().lower() == DIRECT:
                parsed.append((suffix, None))
            else:
                try:
                    parsed.append((suffix, check_proxy_url(target, allowed)))
                except ValueError as e:
                    raise ValueError(f"proxy rule for {suffix}: {e}") from None
        parsed.sort(key=lambda rule: len(rule[0]), reverse=True)
        return cls(check_proxy_url(default, allowed) if default else None, tuple(parsed))

    def proxy_for(self, host: str) -> str | None:
        """The proxy URL for a request to `host`, or None to connect directly."""
        host = host.lower().removesuffix(".")
        for suffix, proxy in self.rules:
            if host == suffix or host.endswith("." + suffix):
                return proxy
        return self.default

    @property
    def enabled(self) -> bool:
        """Whether any request may go through a proxy."""
        return self.default is not None or any(proxy is not None for _, proxy in self.rules)

    def __repr__(self) -> str:
        rules = ", ".join(f"{suffix}->{'proxy' if proxy else DIRECT}" for suffix, proxy in self.rules)
        return f"ProxyRoutes(default={'proxy' if self.default else DIRECT}, rules=[{rules}])"
