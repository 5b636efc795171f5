"""Is an answer what was asked for? Checks on content, not only length.

A proofread keeps its chunk's wording (overlap of character pairs and words), script
and rough length, and does not loop. A summary is in the transcript's script, clearly
shorter than it, drawn from it (its words occur in the source), not a copy of it, does
not loop, and is the bullet list the prompt asks for. Each check returns None when the
answer passes, else a short reason that ends up in the task's warnings.
"""

from __future__ import annotations

import difflib
import re
import zlib
from collections import Counter

# Han, kana and Hangul letters (not CJK punctuation): one unit each; words of other scripts: one unit.
_WIDE_CLASS = r"\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff"
_WIDE = re.compile(f"[{_WIDE_CLASS}]")
_WIDE_RUNS = re.compile(f"[{_WIDE_CLASS}]+")
_WORDS = re.compile(r"[^\W_]+")
_UNIT = re.compile(f"[{_WIDE_CLASS}]|(?:(?![{_WIDE_CLASS}])[^\\W_])+")
# Scripts by their units: a character of the wide scripts, a word of the others.
_SCRIPTS = (
    ("Chinese/Japanese", re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")),
    ("Korean", re.compile(r"[\u1100-\u11ff\ua960-\ua97f\uac00-\ud7af]")),
    ("Latin", re.compile(r"[A-Za-z\u00c0-\u024f]+")),
    ("Cyrillic", re.compile(r"[\u0400-\u04ff]+")),
    ("Arabic", re.compile(r"[\u0600-\u06ff]+")),
)
# A summary longer than this share of its source (in units) is not a summary.
SUMMARY_MAX_SHARE = 0.7
# A summary reproducing this share of its source, in order, is an echo.
ECHO_SHARE = 0.5
# Share of a summary's character pairs and words that must occur in its source: a real
# summary reuses the transcript's terms; nonsense of the right script does not.
SUMMARY_MIN_GROUNDING = 0.3
# An answer compressing this much better than its source repeats itself (a looping model).
LOOP_COMPRESSION = 0.5
_LOOP_MIN_BYTES = 200  # short texts compress badly whatever they are
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•·]|\d{1,2}[.)、])\s*\S", re.MULTILINE)


def units(text: str) -> list[str]:
    """Han/kana/Hangul characters and lower-cased words, in order."""
    return _UNIT.findall(text.lower())


def _grams(text: str) -> Counter[str]:
    """Character pairs within runs of the wide scripts, and words of other scripts (a multiset)."""
    text = text.lower()
    found: Counter[str] = Counter()
    for run in _WIDE_RUNS.findall(text):
        found.update([run] if len(run) == 1 else map(str.__add__, run, run[1:]))
    found.update(_WORDS.findall(_WIDE.sub(" ", text)))
    return found


def _unit_count(text: str) -> int:
    return len(_WIDE.findall(text)) + len(_WORDS.findall(_WIDE.sub(" ", text)))


def overlap(source: str, answer: str) -> float:
    """Dice overlap (0..1) of the two texts' character pairs and words."""
    a, b = _grams(source), _grams(answer)
    total = sum(a.values()) + sum(b.values())
    return 1.0 if total == 0 else 2 * sum((a & b).values()) / total


def script(text: str) -> str | None:
    """The script most of `text`'s units (a CJK character, a word) are in; None without letters."""
    counts = {name: len(pattern.findall(text)) for name, pattern in _SCRIPTS}
    name, count = max(counts.items(), key=lambda item: item[1])
    return name if count else None


def _loops(answer: str, source: str) -> bool:
    data, original = answer.encode(), source.encode()
    if len(data) < _LOOP_MIN_BYTES:
        return False
    ratio = len(zlib.compress(data)) / len(data)
    source_ratio = len(zlib.compress(original)) / max(1, len(original))
    return ratio < LOOP_COMPRESSION * source_ratio


def _script_problem(source: str, answer: str) -> str | None:
    expected, found = script(source), script(answer)
    if expected is not None and found is not None and found != expected:
        return f"is in {found} script, the text is in {expected}"
    return None


def proofread_problem(
    source: str, answer: str, *, ratio_min: float, ratio_max: float, min_overlap: float
) -> str | None:
    """Why `answer` is not a proofread of `source`, or None."""
    if not answer:
        return "came back empty"
    if problem := _script_problem(source, answer):
        return problem
    ratio = len(answer) / max(1, len(source))
    if not ratio_min <= ratio <= ratio_max:
        return f"has an implausible length (output/input length ratio {ratio:.2f}, outside {ratio_min:g}-{ratio_max:g})"
    if _loops(answer, source):
        return "repeats itself"
    shared = overlap(source, answer)
    if shared < min_overlap:
        return f"is not a proofread of it (overlap {shared:.2f}, below {min_overlap:g})"
    return None


def summary_problem(source: str, summary: str, *, echo_of: str | None = None) -> str | None:
    """Why `summary` is not a summary of `source`, or None; `echo_of` (default `source`)
    is the text it must not copy."""
    if not summary:
        return "came back empty"
    if problem := _script_problem(source, summary):
        return problem
    said, original = _unit_count(summary), _unit_count(source)
    if said > SUMMARY_MAX_SHARE * original:
        return f"is not shorter than the text ({said} words/characters for {original})"
    if _loops(summary, source):
        return "repeats itself"
    copied = echo_of if echo_of is not None else source
    if said >= ECHO_SHARE * _unit_count(copied):  # shorter, it cannot hold half of it
        matcher = difflib.SequenceMatcher(None, units(copied), units(summary), autojunk=False)
        echoed = sum(block.size for block in matcher.get_matching_blocks()) / max(1, _unit_count(copied))
        if echoed >= ECHO_SHARE:
            return f"repeats the text instead of summarising it ({echoed:.0%} of it copied)"
    grams = _grams(summary)
    grounded = sum((grams & _grams(source)).values()) / max(1, sum(grams.values()))
    if grounded < SUMMARY_MIN_GROUNDING:
        return f"is not drawn from the text (only {grounded:.0%} of its words occur there)"
    if not _LIST_ITEM.search(summary):
        # Asked for a bullet list; small models that copy a passage or ramble write prose.
        return "is not the bullet list asked for"
    return None
