"""Whisper's repetition loops, found in its output.

On long audio Whisper sometimes locks onto a phrase and writes it again and again ("谢谢
大家谢谢大家谢谢大家…", or the same sentence as segment after segment) over speech it stopped
hearing. People repeat themselves too ("好的好的", "对对对"), so only what goes beyond reason
counts: a phrase of 2+ characters back to back 4+ times over 16+ characters inside a segment,
or the same sentence as 3+ consecutive segments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from actors.domain.video import Segment

MIN_REPEATS = 4  # a phrase back to back this often inside one segment…
MIN_SPAN_CHARS = 16  # …over at least this many characters
MIN_SEGMENT_RUN = 3  # the same sentence as this many segments in a row
MIN_SENTENCE_CHARS = 4  # shorter sentences ("谢谢。") may honestly come three times
# A unit of 2-30 characters followed by itself MIN_REPEATS - 1 more times.
_REPEATED_UNIT = re.compile(r"(.{2,30}?)\1{" + str(MIN_REPEATS - 1) + ",}", re.DOTALL)
_NOT_WORDS = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Loop:
    """A stretch of segments [first, last] (indices) whose text loops."""

    first: int
    last: int

    def span(self, segments: list[Segment]) -> tuple[float, float]:
        return segments[self.first].start, segments[self.last].end


def find_loops(segments: list[Segment]) -> list[Loop]:
    """The looping stretches of a transcript, in order, never overlapping."""
    loops: list[Loop] = []
    index = 0
    while index < len(segments):
        run = _sentence_run(segments, index)
        if run >= MIN_SEGMENT_RUN:
            loops.append(Loop(index, index + run - 1))
            index += run
            continue
        if repeated_phrase(segments[index].text) is not None:
            loops.append(Loop(index, index))
        index += 1
    return loops


def repeated_phrase(text: str) -> str | None:
    """The phrase a text repeats beyond reason, if it does."""
    for match in _REPEATED_UNIT.finditer(text):
        unit = match.group(1)
        if len(match.group(0)) >= MIN_SPAN_CHARS and _NOT_WORDS.sub("", unit):
            return unit
    return None


def collapse(text: str) -> str:
    """The text with each phrase repeated beyond reason written once."""

    def once(match: re.Match[str]) -> str:
        return match.group(1) if len(match.group(0)) >= MIN_SPAN_CHARS else match.group(0)

    return _REPEATED_UNIT.sub(once, text)


def collapse_loops(segments: list[Segment]) -> list[Segment]:
    """Segments with every loop cut to one: a run of one sentence keeps its first segment
    (stretched over the run), a phrase repeated inside a segment is written once."""
    kept = list(segments)
    for loop in reversed(find_loops(segments)):  # from the end: indices before stay valid
        first, last = segments[loop.first], segments[loop.last]
        kept[loop.first : loop.last + 1] = [first.model_copy(update={"end": last.end, "text": collapse(first.text)})]
    return kept


def _sentence_run(segments: list[Segment], index: int) -> int:
    """How many segments from `index` on say the same sentence (1 if the next one differs)."""
    sentence = _NOT_WORDS.sub("", segments[index].text)
    if len(sentence) < MIN_SENTENCE_CHARS:
        return 1
    run = 1
    while index + run < len(segments) and _NOT_WORDS.sub("", segments[index + run].text) == sentence:
        run += 1
    return run
