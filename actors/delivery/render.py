"""What the group sees: WeCom messages rendered within WeCom's byte limits, each with its
`【校对 i/n】title` header, and the one-line `【状态】` notices. Plain module (no Ray)."""

from __future__ import annotations

import re
from enum import StrEnum

from actors.util.textsplit import pack, utf8_len

MAX_BYTES = {"markdown": 4096, "markdown_v2": 4096, "text": 2048}
TITLE_MAX_BYTES = 240  # keeps headers readable and leaves every part room for its body


class BlockKind(StrEnum):
    """Which part of a video's content block a message belongs to."""

    PROOFREAD = "校对"
    SUMMARY = "总结"
    TRANSCRIPT = "转录"


# Anything a renderer could take as a line break (or that is invisible noise in a title).
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def _truncate(text: str, max_bytes: int) -> str:
    """`text` cut by characters (with …) so that it fits `max_bytes` UTF-8 bytes."""
    if utf8_len(text) <= max_bytes:
        return text
    budget = max_bytes - utf8_len("…")
    kept, size = [], 0
    for char in text:
        size += utf8_len(char)
        if size > budget:
            break
        kept.append(char)
    return "".join(kept) + "…"


def clean_title(title: str) -> str:
    """The title as headers show it: one line, whitespace collapsed, at most TITLE_MAX_BYTES."""
    one_line = " ".join(_LINE_BREAKS.sub(" ", title).split())
    return _truncate(one_line or "(无标题)", TITLE_MAX_BYTES)


def _header(kind: BlockKind, index: int | str, total: int | str, title: str) -> str:
    return f"【{kind} {index}/{total}】{title}\n"


def render_parts(kind: BlockKind, title: str, text: str, msgtype: str) -> list[str]:
    """Messages `【{kind} i/n】{title}` + newline + slice of `text`, each within MAX_BYTES[msgtype].

    Slices cut at paragraph, then sentence, then character boundaries and concatenate
    back to `text` exactly. Markdown is not escaped; the title is forced onto one line
    so nothing can break the header. Empty `text` gives no parts.
    """
    limit = MAX_BYTES[msgtype]
    title = clean_title(title)
    digits = 1
    while True:
        # Reserve the widest header with `digits`-wide numbers; more parts than that
        # width allows means a longer header, a smaller body and another try.
        widest = "9" * digits
        body_limit = limit - utf8_len(_header(kind, widest, widest, title))
        bodies = pack(text, body_limit, utf8_len)
        if len(str(len(bodies))) <= digits:
            break
        digits += 1
    total = len(bodies)
    return [_header(kind, index, total, title) + body for index, body in enumerate(bodies, start=1)]


def render_status(text: str) -> str:
    """A status notice `【状态】{text}`, truncated to fit a text message."""
    prefix = "【状态】"
    return prefix + _truncate(text, MAX_BYTES["text"] - utf8_len(prefix))


def strip_header(part: str) -> str:
    """The body of a rendered part: everything after its header line."""
    _, _, body = part.partition("\n")
    return body
