"""Text comparison helpers for tests that check recognised or delivered words."""

from __future__ import annotations

import re

# One CJK character is one "word" (Chinese has no spaces); elsewhere runs of letters/digits,
# keeping inner apostrophes (don't, it's).
_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+(?:'[^\W_]+)*")


def words(text: str) -> list[str]:
    """Lower-cased words of `text`, punctuation dropped; CJK split per character."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def word_overlap(expected: str, actual: str) -> float:
    """Jaccard overlap of the two texts' word sets, 0.0-1.0.

    Sets, not bags: a recogniser that hears "a" for one of five "the"s has not lost the
    content; missing words and invented ones both lower the score.
    """
    want, got = set(words(expected)), set(words(actual))
    if not want and not got:
        return 1.0
    return len(want & got) / len(want | got)
