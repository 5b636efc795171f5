"""The visible text of a cue: only the markup its format defines is removed.

WebVTT: the cue tags `c i b u v lang ruby rt` and inline timestamps, `rt` with its content
(a ruby reading is not what was said), then character references that end in `;`.
SRT: `<i> <b> <u> <font …>` and ASS override codes such as `{\\an8}`; no entities.
Anything else that looks like `<…>` or `&…` is text (`if x < 10 and y > 20`, `&not me`).
Plain module, no I/O.
"""

from __future__ import annotations

import html
import re
from html.entities import html5

_VTT_TAG_NAMES = r"(?:c|i|b|u|v|lang|ruby|rt)"
# <name.class.class annotation> and </name>; a name ends at ".", whitespace or ">".
_VTT_TAG = re.compile(rf"</?{_VTT_TAG_NAMES}(?=[.\s>])[^<>]*>", re.IGNORECASE)
# <00:00:01.000> word timings (YouTube's automatic captions); fields as leniently as the cue timings.
VTT_TIMESTAMP_TAG = re.compile(r"<(?:\d+:)?\d{1,2}:\d{1,2}\.\d{1,3}>")
# A tag opened but never closed (`<c.first That's`): its name (and a <lang>'s language) goes,
# the words after it stay.
_VTT_UNCLOSED_TAG = re.compile(
    rf"</?(?:lang(?:\.[^\s.<>]*)*\s+[a-z]{{2,8}}(?:-[a-z0-9]{{1,8}})*|{_VTT_TAG_NAMES}(?:\.[^\s.<>]*)*)(?=\s|$)(?![^<>\n]*>)",
    re.IGNORECASE,
)
_VTT_RUBY = re.compile(r"<ruby(?=[.\s>])[^<>]*>.*?(?:</ruby\s*>|\Z)", re.IGNORECASE | re.DOTALL)
# In a ruby, an <rt> reading runs to </rt>, to the </ruby> that closes it, or to the end of the cue.
_VTT_RUBY_TEXT = re.compile(r"<rt(?=[.\s>])[^<>]*>.*?(?:</rt\s*>|(?=</ruby\s*>)|\Z)", re.IGNORECASE | re.DOTALL)
_CHAR_REF = re.compile(r"&(?:#([0-9]+)|#[xX]([0-9a-fA-F]+)|([A-Za-z][A-Za-z0-9]*));")

_SRT_TAG = re.compile(r"</?(?:i|b|u|font)(?=[\s>])[^<>]*>", re.IGNORECASE)
_ASS_OVERRIDE = re.compile(r"\{\\[^{}]*\}")

_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
# Invisible marks that only steer rendering, and NUL (WebVTT makes it U+FFFD; nothing was said).
_INVISIBLE = str.maketrans("", "", "\u0000\u200b\u200e\u200f\ufeff")


def vtt_text(raw: str) -> list[str]:
    """Visible lines of WebVTT cue text."""
    text = _VTT_RUBY.sub(lambda ruby: _VTT_RUBY_TEXT.sub("", ruby.group()), raw)
    text = _VTT_UNCLOSED_TAG.sub("", VTT_TIMESTAMP_TAG.sub("", _VTT_TAG.sub("", text)))
    return plain_text(_CHAR_REF.sub(_decode_reference, text))


def srt_text(raw: str) -> list[str]:
    """Visible lines of SRT cue text."""
    return plain_text(_ASS_OVERRIDE.sub("", _SRT_TAG.sub("", raw)))


def plain_text(text: str) -> list[str]:
    """Non-empty lines with runs of spaces collapsed and invisible marks removed."""
    lines = (_SPACES.sub(" ", line.translate(_INVISIBLE)).strip() for line in text.split("\n"))
    return [line for line in lines if line]


def _decode_reference(match: re.Match[str]) -> str:
    """The character a complete reference names; the reference itself when it names none."""
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        return html5.get(f"{name};", match.group())
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return match.group()  # would only be U+FFFD
    return html.unescape(match.group())  # HTML's table: &#150; is "–" as browsers show it
