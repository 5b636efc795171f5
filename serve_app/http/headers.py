"""Security headers of the pages and of the token-less view downloads."""

# Pages render untrusted text (titles, transcripts): only our own scripts may run, and
# the capability URL must not leak to the video site through the Referer header.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
# A view page and its data are private to whoever holds the link.
PRIVATE_HEADERS = {**PAGE_HEADERS, "Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}
