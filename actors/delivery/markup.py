"""Text from outside made inert for WeCom, and LLM summaries turned into what a message type renders.

Titles, transcripts and LLM output all come from outside: a video's uploader, its speech,
or a model that read both. None of it may produce an @-mention, a link, a colour or HTML
in the group, in any message type (`<@userid>` mentions work in `text` too). WeCom
documents no escape character, so markup is broken instead: an invisible U+2060 WORD
JOINER goes inside each construct. The group sees the same characters, and no renderer
sees the construct. The service's own markup (its headers, the view link) is added
after this step and stays live.

Summaries may keep bold and lists (wanted) where the type renders them. `markdown` (v1)
has no lists, tables or code blocks, so those become plain lines. `markdown_v2` renders
them. `text` renders nothing.
"""

from __future__ import annotations

import re

JOINER = "\u2060"  # WORD JOINER: invisible, and no line break opportunity

_TAG_START = re.compile(r"<(?=[A-Za-z/!?@])")  # HTML tags, <font>, <@mention>, <https://autolinks>
_LINK_TARGET = re.compile(r"\](?=\()")  # [text](url) and ![alt](url)
_BOLD = re.compile(r"\*(?=\*)")
_BLOCK_MARKER = re.compile(r"^([ \t]*)(?=#|>|```|~~~)", re.MULTILINE)  # heading, quote, code fence

_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+", re.MULTILINE)
_FENCE = re.compile(r"^[ \t]*(?:```|~~~).*\n?", re.MULTILINE)
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$\n?", re.MULTILINE)
_TABLE_ROW = re.compile(r"^[ \t]*\|(.*)\|[ \t]*$", re.MULTILINE)
_QUOTE = re.compile(r"^([ \t]*)>[ \t]?", re.MULTILINE)


def _live_free(text: str) -> str:
    """No tag, mention, colour, link or image survives."""
    return _LINK_TARGET.sub("]" + JOINER, _TAG_START.sub("<" + JOINER, text))


def inert(text: str) -> str:
    """`text` as plain words in every message type: no tag, mention, link, bold, heading,
    quote or code block. The visible characters are unchanged."""
    text = _BOLD.sub("*" + JOINER, _live_free(text))
    return _BLOCK_MARKER.sub(lambda m: m.group(1) + JOINER, text)


def summary_markup(summary: str, msgtype: str) -> str:
    """An LLM summary in what `msgtype` renders: bold and lists kept where they render,
    turned into plain lines where they do not; never a link, mention, colour or HTML."""
    text = _QUOTE.sub(r"\1", _live_free(summary))  # a quote of the transcript is just its words
    if msgtype == "markdown_v2":
        return text
    text = _TABLE_RULE.sub("", _FENCE.sub("", text))
    text = _TABLE_ROW.sub(lambda m: " · ".join(cell.strip() for cell in m.group(1).split("|")), text)
    text = _BULLET.sub(r"\1• ", text)
    if msgtype == "markdown":
        return _HEADING.sub(r"**\1**", text)
    return _HEADING.sub(r"\1", text).replace("**", "")
