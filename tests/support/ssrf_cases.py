"""SSRF corpus: URLs the service must refuse, and public literals it must accept.

Plain data, shared by the unit tests (tests/unit/test_urlguard.py, against `check_url`) and the
live HTTP API tests (POST /api/transcribe must answer 400 with the same error code). No
case needs DNS: refused names are refused by rule (`localhost`), everything else is a
literal address or a malformed URL.
"""

from __future__ import annotations

from dataclasses import dataclass

INVALID = "invalid_url"  # actors.errors.InvalidURL.code
FORBIDDEN = "forbidden_url"  # actors.errors.ForbiddenURL.code


@dataclass(frozen=True)
class SSRFCase:
    """One URL and the error code the guard must answer with."""

    url: str
    code: str
    why: str


SSRF_CASES: list[SSRFCase] = [
    # --- not http(s) or malformed -> invalid_url
    SSRFCase("file:///etc/passwd", INVALID, "file scheme"),
    SSRFCase("gopher://127.0.0.1:6379/_INFO", INVALID, "gopher scheme (classic Redis SSRF)"),
    SSRFCase("ftp://example.com/video.mp4", INVALID, "ftp scheme"),
    SSRFCase("javascript:alert(1)", INVALID, "javascript scheme"),
    SSRFCase("data:text/html,hello", INVALID, "data scheme"),
    SSRFCase("dict://127.0.0.1:11211/stat", INVALID, "dict scheme"),
    SSRFCase("//127.0.0.1/", INVALID, "scheme-relative"),
    SSRFCase("http:///video", INVALID, "no host"),
    SSRFCase("http://", INVALID, "nothing after the scheme"),
    SSRFCase("http://:80/", INVALID, "empty host with a port"),
    SSRFCase("http://evil@127.0.0.1/", INVALID, "userinfo hiding the real host"),
    SSRFCase("http://user:pass@example.com/", INVALID, "credentials in the URL"),
    SSRFCase("http://example.com\\@127.0.0.1/", INVALID, "backslash before @ (parser confusion)"),
    SSRFCase("http://exam\tple.com/", INVALID, "tab in the host (urllib strips it silently)"),
    SSRFCase("http://example.com /", INVALID, "space in the authority"),
    SSRFCase("http://%31%32%37.0.0.1/", INVALID, "percent-encoded host"),
    SSRFCase("http://a..b/", INVALID, "empty label"),
    SSRFCase("http://example.com:0/", INVALID, "port 0"),
    SSRFCase("http://example.com:65536/", INVALID, "port out of range"),
    SSRFCase("http://example.com:80a/", INVALID, "non-numeric port"),
    SSRFCase("http://256.0.0.1/", INVALID, "numeric host out of range"),
    SSRFCase("http://1.2.3.4.5/", INVALID, "five numeric labels"),
    SSRFCase("http://08.0.0.1/", INVALID, "octal prefix with a non-octal digit"),
    SSRFCase("http://[::1/", INVALID, "unterminated IPv6 literal"),
    SSRFCase("http://[fe80::1%25eth0]/", INVALID, "IPv6 zone identifier"),
    SSRFCase("http://::1/", INVALID, "IPv6 without brackets"),
    SSRFCase("https://example.com/" + "a" * 2100, INVALID, "longer than 2048 characters"),
    # --- IPv4 loopback in every spelling inet_aton accepts -> forbidden_url
    SSRFCase("http://127.0.0.1/", FORBIDDEN, "loopback"),
    SSRFCase("https://127.0.0.1:8265/", FORBIDDEN, "loopback, Ray dashboard port"),
    SSRFCase("http://127.1/", FORBIDDEN, "short form 127.1"),
    SSRFCase("http://127.0.1/", FORBIDDEN, "short form 127.0.1"),
    SSRFCase("http://2130706433/", FORBIDDEN, "decimal 127.0.0.1"),
    SSRFCase("http://0177.0.0.1/", FORBIDDEN, "octal first byte"),
    SSRFCase("http://017700000001/", FORBIDDEN, "octal whole address"),
    SSRFCase("http://127.000.000.001/", FORBIDDEN, "zero-padded (octal) bytes"),
    SSRFCase("http://0x7f.1/", FORBIDDEN, "hex short form"),
    SSRFCase("http://0x7f000001/", FORBIDDEN, "hex whole address"),
    SSRFCase("http://0X7F.0.0.1/", FORBIDDEN, "upper-case hex"),
    SSRFCase("http://127.0.0.1./", FORBIDDEN, "trailing dot"),
    SSRFCase("http://１２７．０．０．１/", FORBIDDEN, "full-width digits (IDNA maps them)"),
    SSRFCase("http://0/", FORBIDDEN, "0 = 0.0.0.0"),
    SSRFCase("http://0.0.0.0:8000/", FORBIDDEN, "unspecified"),
    # --- names that are always local
    SSRFCase("http://localhost/", FORBIDDEN, "localhost"),
    SSRFCase("http://LOCALHOST./", FORBIDDEN, "localhost, upper case, trailing dot"),
    SSRFCase("http://api.localhost:8000/", FORBIDDEN, "*.localhost (RFC 6761)"),
    # --- the other forbidden IPv4 ranges
    SSRFCase("http://10.0.0.1/", FORBIDDEN, "private 10/8"),
    SSRFCase("http://172.16.5.4/", FORBIDDEN, "private 172.16/12"),
    SSRFCase("http://172.31.255.255/", FORBIDDEN, "private 172.16/12, top"),
    SSRFCase("http://192.168.1.1/", FORBIDDEN, "private 192.168/16"),
    SSRFCase("http://169.254.169.254/latest/meta-data/", FORBIDDEN, "cloud metadata (link-local)"),
    SSRFCase("http://0xa9fea9fe/", FORBIDDEN, "cloud metadata, hex"),
    SSRFCase("http://100.64.0.1/", FORBIDDEN, "carrier-grade NAT"),
    SSRFCase("http://224.0.0.1/", FORBIDDEN, "multicast"),
    SSRFCase("http://240.0.0.1/", FORBIDDEN, "reserved"),
    SSRFCase("http://255.255.255.255/", FORBIDDEN, "broadcast"),
    SSRFCase("http://198.18.0.1/", FORBIDDEN, "benchmarking"),
    SSRFCase("http://192.0.2.1/", FORBIDDEN, "documentation TEST-NET-1"),
    SSRFCase("http://198.51.100.7/", FORBIDDEN, "documentation TEST-NET-2"),
    SSRFCase("http://203.0.113.5/", FORBIDDEN, "documentation TEST-NET-3"),
    SSRFCase("http://192.0.0.8/", FORBIDDEN, "IETF protocol assignments"),
    # --- IPv6, and IPv6 forms embedding a forbidden IPv4
    SSRFCase("http://[::1]/", FORBIDDEN, "IPv6 loopback"),
    SSRFCase("http://[::]/", FORBIDDEN, "IPv6 unspecified"),
    SSRFCase("http://[0:0:0:0:0:0:0:1]:8080/", FORBIDDEN, "IPv6 loopback, long form"),
    SSRFCase("http://[::ffff:127.0.0.1]/", FORBIDDEN, "IPv4-mapped loopback"),
    SSRFCase("http://[::ffff:a9fe:a9fe]/", FORBIDDEN, "IPv4-mapped metadata, hex"),
    SSRFCase("http://[::127.0.0.1]/", FORBIDDEN, "IPv4-compatible loopback"),
    SSRFCase("http://[::8.8.8.8]/", FORBIDDEN, "IPv4-compatible (deprecated, never routed)"),
    SSRFCase("http://[64:ff9b::7f00:1]/", FORBIDDEN, "NAT64 of loopback"),
    SSRFCase("http://[64:ff9b::10.0.0.1]/", FORBIDDEN, "NAT64 of private"),
    SSRFCase("http://[64:ff9b:1::1]/", FORBIDDEN, "local-use NAT64 prefix"),
    SSRFCase("http://[2002:7f00:1::]/", FORBIDDEN, "6to4 of loopback"),
    SSRFCase("http://[2002:c0a8:101::1]/", FORBIDDEN, "6to4 of 192.168.1.1"),
    SSRFCase("http://[2001::1]/", FORBIDDEN, "Teredo"),
    SSRFCase("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", FORBIDDEN, "Teredo, real-looking"),
    SSRFCase("http://[fe80::1]/", FORBIDDEN, "IPv6 link-local"),
    SSRFCase("http://[fc00::1]/", FORBIDDEN, "unique-local fc00::/7"),
    SSRFCase("http://[fd12:3456:789a::1]/", FORBIDDEN, "unique-local fd00::/8"),
    SSRFCase("http://[fec0::1]/", FORBIDDEN, "site-local (deprecated)"),
    SSRFCase("http://[ff02::1]/", FORBIDDEN, "IPv6 multicast"),
    SSRFCase("http://[2001:db8::1]/", FORBIDDEN, "IPv6 documentation"),
    SSRFCase("http://[100::1]/", FORBIDDEN, "IPv6 discard-only"),
]

# Public addresses written as literals: accepted without any DNS lookup. Keys are the
# URLs as submitted, values the normalised URL `check_url` returns.
PUBLIC_LITERAL_URLS: dict[str, str] = {
    "http://93.184.215.14/video": "http://93.184.215.14/video",
    "HTTP://93.184.215.14:80/a?b=1#t=3": "http://93.184.215.14/a?b=1#t=3",
    "https://1.1.1.1:8443/x": "https://1.1.1.1:8443/x",
    "http://1572394766/": "http://93.184.215.14/",  # decimal spelling of 93.184.215.14
    "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/": "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
    "http://[::ffff:93.184.215.14]/": "http://[::ffff:5db8:d70e]/",  # IPv4-mapped public
    "http://[64:ff9b::93.184.215.14]/": "http://[64:ff9b::5db8:d70e]/",  # NAT64 of a public address
    "http://[2002:5db8:d70e::1]/": "http://[2002:5db8:d70e::1]/",  # 6to4 of a public address
}
