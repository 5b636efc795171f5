"""Subtitle file bytes to text: byte-order mark, then strict UTF-8, then a detector for the
legacy encodings subtitle files still come in (GB18030 and its subsets GBK/GB2312, Big5, Shift-JIS, cp1251, cp1252).

Never decodes with replacement: a file that no candidate reads whole is refused, so a garbled
transcript (U+FFFD, mojibake of a wrong guess) is not passed off as the video's words.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from charset_normalizer import from_bytes

# UTF-32 before UTF-16: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Legacy encodings worth guessing, most likely first for this service's users: ties in the
# detector's score (short texts decode cleanly in several CJK encodings) go to the earlier one.
_LEGACY = ("gb18030", "big5", "shift_jis", "cp1251", "cp1252")


class UndecodableSubtitles(ValueError):
    """The bytes are not text in any encoding we accept."""


@dataclass(frozen=True)
class DecodedSubtitles:
    text: str
    encoding: str  # the codec used, e.g. "utf-8", "utf-16-le", "gb18030"
    guessed: bool  # True when no BOM or valid UTF-8 said so and the detector chose


def decode_subtitles(data: bytes) -> DecodedSubtitles:
    """The text of a subtitle file; raises UndecodableSubtitles rather than guessing badly."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return DecodedSubtitles(data[len(bom) :].decode(encoding), encoding, guessed=False)
            except UnicodeDecodeError as e:
                raise UndecodableSubtitles(f"starts with a {encoding} byte-order mark but is not {encoding}") from e
    try:
        return DecodedSubtitles(data.decode("utf-8"), "utf-8", guessed=False)
    except UnicodeDecodeError:
        pass
    legacy = _detect_legacy(data)
    if legacy is None:
        raise UndecodableSubtitles(f"not UTF-8 and not readable as any of {', '.join(_LEGACY)}")
    return DecodedSubtitles(data.decode(legacy), legacy, guessed=True)


def _detect_legacy(data: bytes) -> str | None:
    """The legacy codec that reads `data` whole with the least chaos, or None."""
    matches = [m for m in from_bytes(data, cp_isolation=list(_LEGACY)) if m.encoding in _LEGACY]
    if not matches:
        return None
    best = min(matches, key=lambda m: (round(m.chaos, 3), -round(m.coherence, 3), _LEGACY.index(m.encoding)))
    return best.encoding
