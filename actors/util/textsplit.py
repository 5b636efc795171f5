"""Split text at paragraph, then sentence, then character boundaries.

Used by LLM chunking (measured in characters) and WeCom messages (measured in UTF-8
bytes). Pieces always concatenate back to the input exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

Measure = Callable[[str], int]

# A sentence ends after terminal punctuation (CJK or Latin, with closing quotes or
# brackets) followed by whitespace, or after a CJK terminator, or at a line break.
_SENTENCE_END = re.compile(
    r"""(?:[。！？!?…；;]+[”’"'）)\]」』】]*\s*)"""
    r"""|(?:\.+[”’"')\]]*(?:\s+|$))"""
    r"""|\n+"""
)
_PARAGRAPH_END = re.compile(r"\n\s*\n\s*")


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _split_after(pattern: re.Pattern[str], text: str) -> list[str]:
    pieces, start = [], 0
    for match in pattern.finditer(text):
        if match.end() > start:
            pieces.append(text[start : match.end()])
            start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs, each keeping the blank lines that follow it."""
    return _split_after(_PARAGRAPH_END, text)


def split_sentences(text: str) -> list[str]:
    """Sentences, each keeping its terminator and the whitespace after it."""
    return _split_after(_SENTENCE_END, text)


def _split_chars(text: str, limit: int, measure: Measure) -> Iterator[str]:
    # Sizes add up per character (as `pack` assumes): re-measuring the growing piece
    # for every character was quadratic on long unpunctuated text.
    piece, size = "", 0
    for char in text:
        char_size = measure(char)
        if piece and size + char_size > limit:
            yield piece
            piece, size = "", 0
        piece += char
        size += char_size
    if piece:
        yield piece


def _units(text: str, limit: int, measure: Measure) -> Iterator[str]:
    for paragraph in split_paragraphs(text):
        if measure(paragraph) <= limit:
            yield paragraph
            continue
        for sentence in split_sentences(paragraph):
            if measure(sentence) <= limit:
                yield sentence
            else:
                yield from _split_chars(sentence, limit, measure)


def pack(text: str, limit: int, measure: Measure = len) -> list[str]:
    """Split `text` into pieces with `measure(piece) <= limit`, cutting at the
    largest boundary that fits: paragraph, then sentence, then character."""
    if limit < 4:
        raise ValueError("limit too small to hold any character")
    pieces: list[str] = []
    current = ""
    current_size = 0
    for unit in _units(text, limit, measure):
        size = measure(unit)
        if current and current_size + size > limit:
            pieces.append(current)
            current, current_size = "", 0
        current += unit
        current_size += size
    if current:
        pieces.append(current)
    return pieces
