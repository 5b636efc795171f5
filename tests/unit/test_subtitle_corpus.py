"""Subtitle files from other people's test suites (tests/data/subtitles, sources and licences
in tests/data/README.md) are read with the cues the reference parsers read.

References: `srt` (lenient, as we use it) and `pysrt` for SRT; webvtt-py for WebVTT; the
expected cues of mozilla/vtt.js (a browser's parser) and the W3C web-platform-tests. Where
they disagree with us, the table says which cues and why: mostly a strict parser rejecting
a cue (a timestamp with too few digits) that a lenient one keeps; we keep the words.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pysrt
import pytest
import srt
import webvtt

from actors.media.subtitle_decoding import decode_subtitles
from actors.media.subtitle_markup import srt_text, vtt_text
from actors.media.subtitles import parse_subtitles

CORPUS = Path(__file__).resolve().parents[1] / "data" / "subtitles"

Cue = tuple[float, float, str]

# Cues we read per file (None: refused as not a subtitle file): pins the libraries' behaviour.
CUE_COUNTS: dict[str, int | None] = {
    "pysrt/bom-utf-16-be.srt": 7,
    "pysrt/bom-utf-16-le.srt": 7,
    "pysrt/bom-utf-32-be.srt": 7,
    "pysrt/bom-utf-32-le.srt": 7,
    "pysrt/bom-utf-8.srt": 7,
    "pysrt/capability_tester.srt": 37,
    "pysrt/empty.srt": 5,
    "pysrt/invalid.srt": 1,
    "pysrt/no-indexes.srt": 7,
    "pysrt/utf-8.srt": 1332,
    "pysrt/windows-1252.srt": 1332,
    "srt/ascii.srt": 3,
    "srt/gb2312.srt": 3,
    "webvtt-py/captions_with_bom.vtt": 4,
    "webvtt-py/comments.vtt": 3,
    "webvtt-py/cue_tags.vtt": 3,
    "webvtt-py/empty.vtt": None,
    "webvtt-py/empty_caption_text.srt": 4,
    "webvtt-py/invalid.vtt": None,
    "webvtt-py/invalid_format1.srt": None,
    "webvtt-py/invalid_format2.srt": None,
    "webvtt-py/invalid_format3.srt": None,
    "webvtt-py/invalid_format4.srt": 0,
    "webvtt-py/invalid_timeframe.srt": 5,
    "webvtt-py/invalid_timeframe.vtt": 6,
    "webvtt-py/invalid_timeframe_in_cue_text.vtt": 3,
    "webvtt-py/metadata_headers.vtt": 2,
    "webvtt-py/metadata_headers_multiline.vtt": 2,
    "webvtt-py/missing_caption_text.srt": 4,
    "webvtt-py/missing_caption_text.vtt": 4,
    "webvtt-py/missing_timeframe.srt": 4,
    "webvtt-py/missing_timeframe.vtt": 6,
    "webvtt-py/no_captions.vtt": 0,
    "webvtt-py/one_caption.srt": 1,
    "webvtt-py/one_caption.vtt": 1,
    "webvtt-py/sample.srt": 5,
    "webvtt-py/sample.vtt": 16,
    "webvtt-py/styles.vtt": 1,
    "webvtt-py/styles2.srt": 6,
    "webvtt-py/styles2.vtt": 6,
    "webvtt-py/teams_timeframe.vtt": 2,
    "webvtt-py/using_identifiers.vtt": 6,
    "webvtt-py/youtube_dl.vtt": 3,
}

# pysrt disagrees with `srt` and us on these; both keep the words pysrt drops.
PYSRT_DIFFERS = {
    "pysrt/invalid.srt": "pysrt rejects `00:00:01 --> 00:00:10` (no milliseconds); srt and we keep the cue",
    "webvtt-py/missing_timeframe.srt": "pysrt drops the text of a cue without timings; srt and we keep it "
    "in the cue before",
}


def _read(name: str) -> str:
    return decode_subtitles((CORPUS / name).read_bytes()).text


def _ours(name: str, text: str | None = None) -> list[Cue] | None:
    try:
        segments = parse_subtitles(_read(name) if text is None else text, Path(name).suffix[1:])
    except ValueError:
        return None
    return [(round(s.start, 3), round(s.end, 3), s.text) for s in segments]


def _with_text(cues: list[Cue]) -> list[Cue]:
    """Cues that show something, ends clamped to starts as we keep them."""
    return [(round(start, 3), round(max(start, end), 3), text) for start, end, text in cues if text]


def test_every_corpus_file_is_counted() -> None:
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*") if p.suffix in (".srt", ".vtt")}
    assert files - {k for k in files if k.startswith(("vtt.js/", "wpt/"))} == set(CUE_COUNTS)


@pytest.mark.parametrize("name", sorted(CUE_COUNTS))
def test_cue_counts_and_no_replacement_characters(name: str) -> None:
    ours = _ours(name)

    assert (None if ours is None else len(ours)) == CUE_COUNTS[name]
    assert all("\ufffd" not in text for _, _, text in ours or [])


@pytest.mark.parametrize("name", sorted(n for n in CUE_COUNTS if n.endswith(".srt")))
def test_srt_files_read_as_srt_and_pysrt_read_them(name: str) -> None:
    text = _read(name)
    lenient = [
        (s.start.total_seconds(), s.end.total_seconds(), "\n".join(srt_text(s.content)))
        for s in srt.parse(text.replace("\r\n", "\n"), ignore_errors=True)
    ]
    ours = _ours(name) or []

    assert ours == _with_text(lenient)
    if name not in PYSRT_DIFFERS:
        second = [(s.start.ordinal / 1000, s.end.ordinal / 1000, "\n".join(srt_text(s.text))) for s in _pysrt(text)]
        assert ours == _with_text(second)


def _pysrt(text: str) -> list[pysrt.SubRipItem]:
    try:
        return list(pysrt.from_string(text, error_handling=pysrt.ERROR_RAISE))
    except pysrt.Error:
        return []


def test_chinese_and_western_legacy_files_decode_as_the_libraries_tests_expect() -> None:
    assert decode_subtitles((CORPUS / "srt/gb2312.srt").read_bytes()).encoding == "gb18030"
    assert decode_subtitles((CORPUS / "pysrt/windows-1252.srt").read_bytes()).encoding == "cp1252"
    assert _ours("pysrt/windows-1252.srt") == _ours("pysrt/utf-8.srt")  # the same film, two encodings
    assert _ours("srt/gb2312.srt") is not None
    assert "宇宙守护神" in " ".join(text for _, _, text in _ours("srt/gb2312.srt") or [])


# Rolling automatic captions: webvtt-py shows every repeat, we keep each line once.
WEBVTT_PY_DIFFERS = {"webvtt-py/youtube_dl.vtt": [(286.07, 286.47, "yeah"), (286.47, 304.08, "what")]}


@pytest.mark.parametrize("name", sorted(n for n in CUE_COUNTS if n.endswith(".vtt")))
def test_vtt_files_read_as_webvtt_py_reads_them(name: str) -> None:
    text = _read(name)
    try:
        captions = webvtt.from_string(text).captions
    except webvtt.errors.MalformedFileError:
        captions = []
    theirs = _with_text(
        [
            (
                c.start_time.in_milliseconds() / 1000,
                c.end_time.in_milliseconds() / 1000,
                "\n".join(vtt_text(c.raw_text)),
            )
            for c in captions
        ]
    )
    ours = _ours(name) or []

    if name in WEBVTT_PY_DIFFERS:
        assert ours[: len(WEBVTT_PY_DIFFERS[name])] == WEBVTT_PY_DIFFERS[name]
        assert len(ours) < len(theirs)
    else:
        assert ours == theirs


# --- mozilla/vtt.js: the cues a browser's parser made of each file, and the text it showed ---

VTTJS: dict[str, list[list[object]]] = json.loads((CORPUS / "vtt.js/expected.json").read_text(encoding="utf-8"))

# Cues vtt.js and we disagree on: (the cues we read, why).
VTTJS_CUES_DIFFER: dict[str, tuple[list[Cue] | None, str]] = {
    "cue-times/fraction-digits.vtt": ([(0.0, 2.0, "Text")], "`00:00.00`: two fraction digits, kept leniently"),
    "cue-times/min-top-digits.vtt": (None, "`000:00.000` is hours without seconds to W3C and webvtt-py"),
    "cue-times/minimum-spots-over-sixty.vtt": (None, "`120:00.000` is hours without seconds to W3C and webvtt-py"),
    "file-layout/header-no-new-line.vtt": (
        [(11.0, 13.0, "Test")],
        'W3C: a "-->" line ends the header (WPT nulls.test); vtt.js predates that',
    ),
    "integration/id.vtt": (
        [(1.0, 2.0, "This"), (2.0, 3.0, "Is"), (3.0, 4.0, "A"), (4.0, 5.0, "Test"), (6.0, 7.0, "And stuff?")],
        'W3C: a lone "-->" line is a failed cue and the next timing line starts a new one (WPT arrows.test)',
    ),
}

# Text we show differently from vtt.js, on purpose.
VTTJS_TEXT_DIFFERS = {
    # <rt> is the ruby reading (furigana), not what was said.
    "cuetext/ruby/basic.vtt": "It's a",
    "cuetext/ruby/rt-no-end-tag.vtt": "No",
    "cuetext/ruby/ruby-rt-no-end-tag.vtt": "That's",
    "cuetext/ruby/with-annotation.vtt": "That's",
    "cuetext/ruby/with-closing-span.vtt": "That's Hee!",
    "cuetext/ruby/with-subclass.vtt": "That's",
    "cuetext/ruby/with-two-subclasses.vtt": "That's",
    # A tag that is not WebVTT's is text; a browser hides it.
    "cuetext/tag-format/bogus-span-name.vtt": "<bad>That's awesome!</bad>",
    "cuetext/timestamp/non-digit.vtt": "<a0:01.000>It's a blue apple tree!",
    "cuetext/timestamp/space-after-lt.vtt": "< 00:01.000>That's awesome!",
    # A tag left open runs to the end of the cue for a browser, hiding the words; we keep them.
    "cuetext/lang/no-end-gt.vtt": "It's a blue apple tree!",
    "cuetext/tag-format/end-tag-no-gt.vtt": "This is awesome!",
    "cuetext/tag-format/no-closing-gt.vtt": "It's a blue apple tree!",
    "cuetext/tag-format/start-tag-missing-gt.vtt": "That's awesome!",
    "cuetext/voice/no-end-gt.vtt": "It's a blue apple tree!",
}
_DIRECTION_MARKS = str.maketrans("", "", "\u200e\u200f")  # shown by a browser, dropped from a transcript


@pytest.mark.parametrize("name", sorted(VTTJS))
def test_vttjs_files_give_the_browsers_cues(name: str) -> None:
    ours = _ours(f"vtt.js/{name}")
    expected = VTTJS[name]

    if name in VTTJS_CUES_DIFFER:
        assert ours == VTTJS_CUES_DIFFER[name][0]
        return
    shown = [(float(c[0]), float(c[1])) for c in expected if str(c[2]).strip()]
    assert [(s, e) for s, e, _ in ours or []] == [(s, max(s, e)) for s, e in shown]
    texts = [" ".join(str(c[3]).translate(_DIRECTION_MARKS).split()) for c in expected if len(c) > 3]
    if name in VTTJS_TEXT_DIFFERS:
        texts = [VTTJS_TEXT_DIFFERS[name]]
    if len(texts) == len(ours or []):  # vtt.js recorded the shown text of these files
        assert [" ".join(t.split()) for _, _, t in ours or []] == texts


# --- web-platform-tests: the W3C WebVTT parser tests (source + assertions per file) ---

# Cues a W3C parser rejects and our lenient reading (webvtt-py's) keeps.
WPT_LENIENT_EXTRA = {
    "nulls.test": 4,  # end times with one or two fraction digits (`01.00`) before a NUL
    "timings-too-short.test": 9,  # `00:0:00.000`, `00:00:00.0`, `0:00.000`: fields short of their digits
    "whitespace-chars.test": 1,  # vertical tabs around the timings
}
# Text we give differently from a browser: NUL dropped, not made U+FFFD; spaces trimmed.
WPT_TEXT = {("nulls.test", 2): "\ufffdtext3", ("whitespace-chars.test", 0): "text1"}


def _wpt(path: Path) -> tuple[str, str]:
    """(assertions, WebVTT source) of a .test file, escapes decoded as the WPT build does."""
    _, body = path.read_text(encoding="utf-8").split("\n\n", 1)
    js, source = body.split("===\n", 1)
    return js, source.encode().decode("unicode_escape")


@pytest.mark.parametrize("name", sorted(p.name for p in (CORPUS / "wpt").glob("*.test")))
def test_wpt_files_give_the_w3c_cues(name: str) -> None:
    js, source = _wpt(CORPUS / "wpt" / name)
    ours = [s.text for s in parse_subtitles(source, "vtt")]

    count = re.search(r"cues\.length, (\d+)", js)
    if count is not None:
        assert len(ours) == int(count.group(1)) + WPT_LENIENT_EXTRA.get(name, 0)
    texts = {int(i): text for i, _, text in re.findall(r"cues\[(\d+)\]\.text, (['\"])(.*?)\2\)", js)}
    expected = [WPT_TEXT.get((name, i), html.unescape(json.loads(f'"{t}"'))) for i, t in sorted(texts.items())]
    assert _is_subsequence(expected, ours)


def _is_subsequence(wanted: list[str], seen: list[str]) -> bool:
    rest = iter(seen)
    return all(any(w == s for s in rest) for w in wanted)


def test_vtt_exports_of_the_corpus_read_back_equal() -> None:
    from actors.domain.formats import render
    from actors.domain.video import Segment, Transcript

    for name in sorted(n for n in CUE_COUNTS if CUE_COUNTS[n]):
        segments = [Segment(start=s, end=e, text=t) for s, e, t in _ours(name) or []]
        transcript = Transcript(segments=segments)
        for fmt in ("srt", "vtt"):
            exported = render(transcript, fmt)  # type: ignore[arg-type]
            assert _ours(f"x.{fmt}", exported) == _ours(name), (name, fmt)
