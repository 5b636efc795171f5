"""What the group sees: WeCom messages rendered within WeCom's byte limits, each with its
`【校对 i/n】title` header, and the one-line `【状态】` notices. Plain module (no Ray)."""

from __future__ import annotations

import re
from enum import StrEnum

import regex

from actors.util.textsplit import Construct, Kind, constructs, pack, utf8_len

MAX_BYTES = {"markdown": 4096, "markdown_v2": 4096, "text": 2048}
# Parts stay this far under MAX_BYTES: WeCom counts the content after its own decoding and
# does not document how exactly, and a part over its limit is refused for good (40058).
# Small on purpose: every byte of it, times the parts of a long text, is another message.
SAFETY_MARGIN_BYTES = 48
TITLE_MAX_BYTES = 240  # keeps headers readable and leaves every part room for its body
BOLD_MARK = "**"
RENDERS_BOLD = frozenset({"markdown", "markdown_v2"})  # in `text`, an added `**` would show


class BlockKind(StrEnum):
    """Which part of a video's content block a message belongs to."""

    PROOFREAD = "校对"
    SUMMARY = "总结"
    TRANSCRIPT = "转录"


# Anything a renderer could take as a line break (or that is invisible noise in a title).
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def _truncate(text: str, max_bytes: int) -> str:
    """`text` cut between grapheme clusters (with …) so that it fits `max_bytes` UTF-8 bytes."""
    if utf8_len(text) <= max_bytes:
        return text
    budget = max_bytes - utf8_len("…")
    kept, size = [], 0
    for cluster in regex.finditer(r"\X", text):
        size += utf8_len(cluster[0])
        if size > budget:
            break
        kept.append(cluster[0])
    return "".join(kept) + "…"


def clean_title(title: str) -> str:
    """The title as headers show it: one line, whitespace collapsed, at most TITLE_MAX_BYTES."""
    one_line = " ".join(_LINE_BREAKS.sub(" ", title).split())
    return _truncate(one_line or "(无标题)", TITLE_MAX_BYTES)


def _header(kind: BlockKind, index: int | str, total: int | str, title: str) -> str:
    return f"【{kind} {index}/{total}】{title}\n"


def _bold_runs(text: str, msgtype: str) -> list[Construct]:
    """The bold runs a part may have to close and reopen: none where bold does not render."""
    return [c for c in constructs(text) if c.kind is Kind.BOLD] if msgtype in RENDERS_BOLD else []


def _reopen_bold(bodies: list[str], runs: list[Construct]) -> list[str]:
    """`bodies` with each bold run that a cut splits closed before the cut and reopened after it.

    The markers go inside the whitespace at the cut (`**a.** ` / `**b`), where markdown
    still reads them as emphasis; they are the only characters a part adds to the text.
    """
    result: list[str] = []
    cut = run = 0  # `runs` are by start and never overlap
    inside = False  # the previous part was cut inside a bold run
    for body in bodies:
        cut += len(body)  # where this part ends in the text
        if inside:
            rest = body.lstrip()
            body = body[: len(body) - len(rest)] + BOLD_MARK + rest
        while run < len(runs) and runs[run].inner_end <= cut:
            run += 1
        inside = run < len(runs) and runs[run].inner_start < cut
        if inside:
            kept = body.rstrip()
            body = kept + BOLD_MARK + body[len(kept) :]
        result.append(body)
    return result


def part_budget(text: str, msgtype: str) -> int:
    """The UTF-8 bytes each part of `text` may take, header included: MAX_BYTES less the
    safety margin and, if a bold run may be closed and reopened, room for its markers."""
    reopen = 2 * utf8_len(BOLD_MARK) if _bold_runs(text, msgtype) else 0
    return MAX_BYTES[msgtype] - SAFETY_MARGIN_BYTES - reopen


def render_parts(kind: BlockKind, title: str, text: str, msgtype: str) -> list[str]:
    """Messages `【{kind} i/n】{title}` + newline + slice of `text`, each within
    MAX_BYTES[msgtype] less SAFETY_MARGIN_BYTES.

    Slices cut at paragraph, sentence, clause, then grapheme cluster boundaries, never inside
    a URL, link, code span, font span or bold run that fits (see `textsplit`), and
    concatenate back to `text` exactly, with one exception: in a type that renders bold, a
    bold run longer than a part is closed with `**` at the end of one part and reopened with
    `**` at the start of the next. Markdown is not escaped; the title is forced onto one
    line so nothing can break the header. Empty `text` gives no parts.
    """
    limit = part_budget(text, msgtype)
    title = clean_title(title)
    digits = 1
    while True:
        # Reserve the widest header with `digits`-wide numbers; more parts than that
        # width allows means a longer header, a smaller body and another try.
        widest = "9" * digits
        header = utf8_len(_header(kind, widest, widest, title))
        bodies = pack(text, limit - header, utf8_len)
        if len(str(len(bodies))) <= digits:
            break
        digits += 1
    bodies = _reopen_bold(bodies, _bold_runs(text, msgtype))
    return [_header(kind, index, len(bodies), title) + body for index, body in enumerate(bodies, start=1)]


def render_status(text: str) -> str:
    """A status notice `【状态】{text}`, truncated to fit a text message."""
    prefix = "【状态】"
    return prefix + _truncate(text, MAX_BYTES["text"] - utf8_len(prefix))


def strip_header(part: str) -> str:
    """The body of a rendered part: everything after its header line."""
    _, _, body = part.partition("\n")
    return body
