"""Character error rate of Chinese transcripts, on the text's words and not on how they are written.

Both sides are normalised the same way before they are compared: Traditional characters
become Simplified (zhconv), Arabic numerals become Chinese ones as they are read aloud
(2024年 → 二零二四年, 16% → 百分之十六, 101 → 一百零一; the way cn2an reads them, which is how
the benchmark's clips were spoken), 〇/两 become 零/二, Latin letters are lower-cased, and
everything that is not a letter or a digit (punctuation, spaces) is dropped. Whisper writes
"2024年" one time and "二〇二四年" the next; neither is an error.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import zhconv

_DIGITS = "零一二三四五六七八九"
_UNITS = ("", "十", "百", "千")
_GROUPS = ("", "万", "亿", "万亿")
_NUMBER = re.compile(r"(\d+)(?:\.(\d+))?(%)?")
# A year (three or four digits before 年) is read digit by digit; cn2an does the same.
_YEAR = re.compile(r"\d{3,4}(?=年)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")  # 5,999 is one number


def _read_group(n: int) -> str:
    """0 < n < 10000 as spoken, with 零 for the gaps inside it (1010 → 一千零一十)."""
    out, gap = "", False
    for position in range(3, -1, -1):
        digit = n // 10**position % 10
        if digit == 0:
            gap = bool(out)
            continue
        if gap:
            out += "零"
            gap = False
        out += _DIGITS[digit] + _UNITS[position]
    return out


def read_integer(n: int) -> str:
    """A non-negative integer as spoken in Mandarin: 101 → 一百零一, 2000000 → 二百万, 15 → 十五."""
    if n == 0:
        return "零"
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out, gap = "", False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            gap = bool(out)
            continue
        if out and (gap or group < 1000):
            out += "零"  # 1005 万 → 一千万零五 … a missing thousand is said
        out += _read_group(group) + _GROUPS[index]
        gap = False
    # 10-19 at the start are 十, 十一 …, never 一十一.
    return out[1:] if out.startswith("一十") else out


def _read_number(match: re.Match[str]) -> str:
    whole, fraction, percent = match.groups()
    spoken = read_integer(int(whole))
    if fraction:
        spoken += "点" + "".join(_DIGITS[int(d)] for d in fraction)
    return "百分之" + spoken if percent else spoken


def spell_numerals(text: str) -> str:
    """Arabic numerals in `text` as Chinese numerals, the way they are read aloud."""
    text = _THOUSANDS.sub("", text)
    text = _YEAR.sub(lambda m: "".join(_DIGITS[int(d)] for d in m.group()), text)
    return _NUMBER.sub(_read_number, text)


def normalise(text: str) -> str:
    """The characters a CER is computed on: Simplified, numerals spelled out, no punctuation or spaces."""
    text = unicodedata.normalize("NFKC", text)  # full-width digits, letters and ％ become ASCII
    text = spell_numerals(zhconv.convert(text, "zh-hans"))
    text = text.replace("〇", "零").replace("两", "二").lower()
    # Letters (L*) and numbers (N*: also 〇 and Roman numerals) stay; punctuation, symbols, spaces go.
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance: substitutions + deletions + insertions turning `reference` into `hypothesis`."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_char in enumerate(reference, 1):
        current = [i]
        for j, hyp_char in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_char != hyp_char)))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class ErrorCount:
    """Edits and reference length of one or more transcripts; `rate` is their CER."""

    errors: int
    length: int

    @property
    def rate(self) -> float:
        return self.errors / self.length if self.length else 0.0


def count_errors(reference: str, hypothesis: str) -> ErrorCount:
    """The character errors of `hypothesis` against `reference`, both normalised."""
    ref = normalise(reference)
    return ErrorCount(edit_distance(ref, normalise(hypothesis)), len(ref))


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate of one transcript (0.0 is perfect; above 1.0 is possible)."""
    return count_errors(reference, hypothesis).rate


def total(counts: Iterable[ErrorCount]) -> ErrorCount:
    """Pooled over several transcripts: all edits over all reference characters (long clips weigh more)."""
    items = list(counts)
    return ErrorCount(sum(c.errors for c in items), sum(c.length for c in items))
