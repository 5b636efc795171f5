"""The links in a chat message: share texts carry a title, some words and a short link."""

from __future__ import annotations

import re

# Up to whitespace or what never sits in a link but often right after one in Chinese text.
_LINK = re.compile(r"https?://[^\s<>\"'`，。！？；：、（）【】《》「」“”‘’\u3000]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}*_~"  # sentence punctuation and markup after a link
_MENTION = re.compile(r"^\s*@\S+\s*")


def strip_mention(text: str) -> str:
    """The message without the leading `@robot`."""
    return _MENTION.sub("", text, count=1).strip()


def extract_links(text: str, limit: int = 10) -> list[str]:
    """Every http(s) link in `text`, in order, each once, at most `limit`."""
    found: list[str] = []
    for match in _LINK.finditer(text):
        link = match.group(0).rstrip(_TRAILING)
        if link.count("://") == 1 and link not in found and len(link) > len("https://"):
            found.append(link)
    return found[:limit]
