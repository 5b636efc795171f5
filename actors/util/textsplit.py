"""Split text where a reader sees a break: paragraph, then sentence, then clause, then
grapheme cluster (what people see as one character), never inside a construct that fits.

Used by LLM chunking (measured in characters) and WeCom messages (measured in UTF-8
bytes). Pieces always concatenate back to the input exactly. A construct (URL, markdown
link or image, inline code, `<font>` span, `**bold**` run) is never cut when it fits the
limit, and no paragraph, sentence or clause boundary lies inside a URL, link, image or
code span: `?` in `watch?v=` ends no sentence. A bold or font run too long for one piece
is cut at the breaks of its own prose, never in its markers; a caller that renders
markdown reopens it (see `actors.delivery.render`). Only a span with no such cut (one
cluster with hundreds of marks, a run holding nothing but a construct) is cut anyway,
last of all between code points. `measure` must add up over concatenation, as `len` and
`utf8_len` do: sizes are summed, never re-measured, which keeps `pack` linear.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from itertools import compress, pairwise

import regex

Measure = Callable[[str], int]


class Level(IntEnum):
    """How strong a break at a position is; NONE: inside a grapheme cluster (or a protected span)."""

    NONE = 0
    GRAPHEME = 1
    CLAUSE = 2
    SENTENCE = 3
    PARAGRAPH = 4


class Kind(StrEnum):
    """What a construct is. Bold and font runs hold prose; the others are atoms."""

    URL = "url"
    LINK = "link"  # [text](url) and ![alt](url)
    CODE = "code"
    FONT = "font"
    BOLD = "bold"


PROSE = frozenset({Kind.BOLD, Kind.FONT})


@dataclass(frozen=True, slots=True)
class Construct:
    """`text[start:end]`, a span a cut would break; its content is `text[inner_start:inner_end]`,
    between its opening and closing markers (the whole span for atoms)."""

    kind: Kind
    start: int
    end: int
    inner_start: int
    inner_end: int


_GRAPHEME = regex.compile(r"\X")

# Closing quotes, brackets and markers that belong to the sentence or clause they end. A
# `**` taken here that opens a bold run is moved back before it (see `_snap`).
_CLOSERS = r"""(?:[”’"'）)\]」』】》〉]|\*\*|(?i:</font>))*"""
# A sentence ends after terminal punctuation (CJK or Latin, with closers) followed by
# whitespace, or after a CJK terminator, or at a line break.
_SENTENCE_END = re.compile(rf"(?:[。！？!?…；;]+{_CLOSERS}\s*)|(?:\.+{_CLOSERS}(?:\s+|$))|\n+")
# A clause ends after a comma, enumeration comma or colon; a Latin one not inside a number
# (1,000 12:30) or a scheme (ftp://).
_CLAUSE_END = re.compile(rf"(?:[，、：﹐﹑︰]|[,:](?![\d/]))+{_CLOSERS}\s*")
_PARAGRAPH_END = re.compile(r"\n\s*\n\s*")
_BOUNDARIES = ((Level.CLAUSE, _CLAUSE_END), (Level.SENTENCE, _SENTENCE_END), (Level.PARAGRAPH, _PARAGRAPH_END))

# Each pattern stops at the next opener of its kind or at a line end, so a scan never
# runs past where the next one starts: finding constructs stays linear.
_URL = re.compile(r"(?i:https?://)[^\s<>\"，。！？；：、（）【】「」『』《》〈〉“”‘’…]+")
_URL_TRAILING = frozenset(".,:;!?*_~'")  # punctuation after a URL, not part of it (as GFM)
_LINK = re.compile(r"!?\[[^\[\]\n]*\]\((?:[^()\s]|\([^()\s]*\))*\)")
_CODE = re.compile(r"``(?:[^`\n]|`(?!`))+``|`[^`\n]+`")
_FONT = re.compile(r"(<font\b[^<>\n]*>)(?:[^<\n]|<(?!/?font\b))*</font>", re.IGNORECASE)
_FONT_CLOSE = len("</font>")
_BOLD = re.compile(r"\*\*(?:[^*\n]|\*(?!\*))+\*\*")
_BOLD_MARK = len("**")

_DEMOTE = bytes(min(value, Level.GRAPHEME) for value in range(256))
_AT_LEAST = {level: bytes(int(value >= level) for value in range(256)) for level in Level if level}


class _ClusterLevels(dict[int, bytes]):
    def __missing__(self, length: int) -> bytes:
        self[length] = bytes(length - 1) + bytes([Level.GRAPHEME])
        return self[length]


_CLUSTER_LEVELS = _ClusterLevels()


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _url_end(text: str, start: int, end: int) -> int:
    """Where the URL matched at `text[start:end]` really ends: trailing punctuation and a
    closing bracket it did not open are left out, so `(https://x.y/a_(b))` keeps `(b)`."""
    opened = {")": text.count("(", start, end), "]": text.count("[", start, end)}
    closed = {")": text.count(")", start, end), "]": text.count("]", start, end)}
    while end > start:
        last = text[end - 1]
        if last in closed and closed[last] > opened[last]:
            closed[last] -= 1
        elif last not in _URL_TRAILING:
            break
        end -= 1
    return end


def constructs(text: str) -> list[Construct]:
    """Every URL, link, image, code span, font span and bold run in `text`, by start.

    None spans a line break. Constructs of different kinds may nest (a link in a bold run).
    """
    found = []
    for match in _URL.finditer(text):
        end = _url_end(text, match.start(), match.end())
        found.append(Construct(Kind.URL, match.start(), end, match.start(), end))
    for kind, pattern in ((Kind.LINK, _LINK), (Kind.CODE, _CODE)):
        found += [Construct(kind, m.start(), m.end(), m.start(), m.end()) for m in pattern.finditer(text)]
    found += [Construct(Kind.FONT, m.start(), m.end(), m.end(1), m.end() - _FONT_CLOSE) for m in _FONT.finditer(text)]
    found += [
        Construct(Kind.BOLD, m.start(), m.end(), m.start() + _BOLD_MARK, m.end() - _BOLD_MARK)
        for m in _BOLD.finditer(text)
    ]
    return sorted(found, key=lambda c: (c.start, -c.end))


def _snap(levels: bytearray, to: int, start: int, end: int) -> None:
    """Boundaries at positions start..end-1 (within a run's marker) move to `to`, its edge."""
    strongest = max(levels[start:end], default=Level.NONE)
    levels[start:end] = levels[start:end].translate(_DEMOTE)
    if levels[to]:
        levels[to] = max(levels[to], strongest)


def _levels(text: str, found: list[Construct]) -> bytearray:
    """The strongest break at each position 0..len(text), ignoring the limit."""
    # A cluster of k code points: no break at its first k-1 inner positions, one after it.
    levels = bytearray([Level.GRAPHEME]) + b"".join(map(_CLUSTER_LEVELS.__getitem__, map(len, _GRAPHEME.findall(text))))
    for level, pattern in _BOUNDARIES:  # weakest first: a stronger one overwrites
        for match in pattern.finditer(text):
            if levels[match.end()]:
                levels[match.end()] = level
    for construct in found:
        if construct.kind in PROSE:  # `。**` ends a sentence after the bold run, not inside it
            _snap(levels, construct.start, construct.start + 1, construct.inner_start + 1)
            _snap(levels, construct.end, construct.inner_end, construct.end)
    return levels


def _demote_inside(levels: bytearray, start: int, end: int) -> None:
    levels[start + 1 : end] = levels[start + 1 : end].translate(_DEMOTE)


def _forbid(levels: bytearray, start: int, end: int) -> None:
    """No cut at positions start..end-1."""
    if end > start:
        levels[start:end] = bytes(end - start)


def _cuts(mask: bytearray, start: int, end: int) -> list[int]:
    """Positions strictly between `start` and `end` that `mask` marks."""
    return list(compress(range(start + 1, end), mask[start + 1 : end]))


def _split_at(text: str, level: Level) -> list[str]:
    found = constructs(text)
    levels = _levels(text, found)
    for construct in found:
        _demote_inside(levels, construct.start, construct.end)
    bounds = [0, *_cuts(levels.translate(_AT_LEAST[level]), 0, len(text)), len(text)]
    return [text[start:end] for start, end in pairwise(bounds) if end > start]


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs, each keeping the blank lines that follow it."""
    return _split_at(text, Level.PARAGRAPH)


def split_sentences(text: str) -> list[str]:
    """Sentences, each keeping its terminator and the whitespace after it."""
    return _split_at(text, Level.SENTENCE)


def split_clauses(text: str) -> list[str]:
    """Clauses (and sentences), each keeping its punctuation and the whitespace after it."""
    return _split_at(text, Level.CLAUSE)


class _Packer:
    """Cuts `text` into units that each fit, at the strongest breaks that give such units."""

    def __init__(self, text: str, limit: int, measure: Measure) -> None:
        self.text, self.limit, self.measure = text, limit, measure
        found = constructs(text)
        levels = _levels(text, found)
        too_long = []
        for construct in found:
            if measure(text[construct.start : construct.end]) <= limit:
                _forbid(levels, construct.start + 1, construct.end)
            elif construct.kind in PROSE:
                too_long.append(construct)
            else:
                _demote_inside(levels, construct.start, construct.end)
        # Cuts that keep every construct that fits whole, allowed in the markers of runs
        # too long: the last resort before cutting constructs (a font span holding only a
        # bold run that fits has no other cut).
        self.loose = levels.translate(_AT_LEAST[Level.GRAPHEME])
        for construct in too_long:  # cut between its words, never in a marker
            _forbid(levels, construct.start + 1, construct.inner_start + 1)
            _forbid(levels, construct.inner_end, construct.end)
        self.masks: dict[int, bytearray] = {level: levels.translate(_AT_LEAST[level]) for level in Level if level}
        self.units: list[tuple[int, int]] = []  # (end, size); each starts where the previous ended

    def divide(self, start: int, end: int, level: int, size: int | None = None) -> None:
        if size is None:
            size = self.measure(self.text[start:end])
        if size <= self.limit:
            self.units.append((end, size))
            return
        for weaker in range(level, Level.NONE, -1):
            cuts = _cuts(self.masks[weaker], start, end)
            if not cuts:
                continue
            if weaker > Level.GRAPHEME:
                for piece_start, piece_end in pairwise([start, *cuts, end]):
                    self.divide(piece_start, piece_end, weaker - 1)
                return
            # One unit per grapheme cluster or protected construct: inline, as this runs
            # once per character of long unpunctuated text.
            for piece_start, piece_end in pairwise([start, *cuts, end]):
                size = self.measure(self.text[piece_start:piece_end])
                if size <= self.limit:
                    self.units.append((piece_end, size))
                else:
                    self.split_hard(piece_start, piece_end)
            return
        self.split_hard(start, end)

    def split_hard(self, start: int, end: int) -> None:
        """Last resort for a span too long for a piece: in the markers of a run too long,
        then between grapheme clusters (constructs that overlap into one span too long),
        then between code points (a cluster with hundreds of marks)."""
        for piece_start, piece_end in pairwise([start, *_cuts(self.loose, start, end), end]):
            size = self.measure(self.text[piece_start:piece_end])
            if size <= self.limit:
                self.units.append((piece_end, size))
                continue
            position = piece_start
            for cluster in _GRAPHEME.findall(self.text, piece_start, piece_end):
                size = self.measure(cluster)
                if size <= self.limit:
                    position += len(cluster)
                    self.units.append((position, size))
                    continue
                for char in cluster:
                    position += 1
                    self.units.append((position, self.measure(char)))


def pack(text: str, limit: int, measure: Measure = len) -> list[str]:
    """Split `text` into pieces with `measure(piece) <= limit`, cutting at the strongest
    boundary that fits: paragraph, then sentence, then clause, then grapheme cluster."""
    if limit < 4:
        raise ValueError("limit too small to hold any character")
    packer = _Packer(text, limit, measure)
    packer.divide(0, len(text), Level.PARAGRAPH)
    pieces: list[str] = []
    start = end = size = 0
    for unit_end, unit_size in packer.units:
        if size and size + unit_size > limit:
            pieces.append(text[start:end])
            start, size = end, 0
        end = unit_end
        size += unit_size
    if end > start:
        pieces.append(text[start:end])
    return pieces
