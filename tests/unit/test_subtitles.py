"""Subtitle reading: WebVTT, SRT and YouTube json3 to timed segments, decoded from any encoding sites use."""

from __future__ import annotations

import codecs
import html
import json

import pysrt
import pytest
import srt
import webvtt
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.domain.formats import render
from actors.domain.video import Segment, Transcript, TranscriptSource
from actors.media.subtitle_decoding import UndecodableSubtitles, decode_subtitles
from actors.media.subtitle_markup import plain_text
from actors.media.subtitles import parse_subtitles
from tests.support.video_site import SPEECH_EN_TEXT, SPEECH_EN_VTT


def _spans(data: str, ext: str) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, s.text) for s in parse_subtitles(data, ext)]


def test_vtt_cues_with_ids_settings_and_markup() -> None:
    vtt = (
        "\ufeffWEBVTT Kind: captions\nLanguage: en\n\n"
        "STYLE\n::cue { color: yellow }\n\n"
        "NOTE written by hand\n\n"
        "intro\n00:01.500 --> 00:03.250 align:start position:10%\n<v Ann>Hello <b>there</b></v>\n\n"
        "01:00:00.000 --> 01:00:02.000\nFish &amp; chips\nfor two\n"
    )

    assert _spans(vtt, "vtt") == [
        (1.5, 3.25, "Hello there"),
        (3600.0, 3602.0, "Fish & chips\nfor two"),
    ]


def test_the_test_sites_vtt_gives_the_spoken_words() -> None:
    segments = parse_subtitles(SPEECH_EN_VTT, "vtt")

    assert " ".join(s.text for s in segments) == SPEECH_EN_TEXT
    assert segments[0].start == pytest.approx(0.3)
    assert segments[-1].end == pytest.approx(14.0)


def test_srt_with_crlf_italics_and_ass_tags() -> None:
    srt = (
        "1\r\n00:00:00,000 --> 00:00:02,500\r\n{\\an8}<i>First</i> line\r\n\r\n"
        '2\r\n00:00:02,500 --> 00:00:05,000\r\n<font color="#fff">Second</font>\r\nline\r\n\r\n'
    )

    assert _spans(srt, "srt") == [(0.0, 2.5, "First line"), (2.5, 5.0, "Second\nline")]


def test_json3_events_with_word_segments() -> None:
    doc = {
        "wireMagic": "pb3",
        "events": [
            {"tStartMs": 0, "dDurationMs": 90000, "id": 1, "wpWinPosId": 1},  # window definition
            {"tStartMs": 200, "dDurationMs": 2800, "segs": [{"utf8": "the"}, {"utf8": " quick", "tOffsetMs": 400}]},
            {"tStartMs": 2990, "dDurationMs": 10, "aAppend": 1, "segs": [{"utf8": "\n"}]},
            {"tStartMs": 3000, "dDurationMs": 2500, "segs": [{"utf8": "brown fox"}]},
        ],
    }

    assert _spans(json.dumps(doc), "json3") == [(0.2, 3.0, "the quick"), (3.0, 5.5, "brown fox")]


def test_rolling_auto_captions_keep_each_line_once() -> None:
    # The shape of YouTube's automatic VTT: each cue repeats the previous line, word timings
    # inline, and 10 ms "transition" cues that only repeat.
    vtt = (
        "WEBVTT\nKind: captions\nLanguage: en\n\n"
        "00:00:00.160 --> 00:00:02.070 align:start position:0%\n \n"
        "the<00:00:00.480><c> quick</c><00:00:00.800><c> brown</c>\n\n"
        "00:00:02.070 --> 00:00:02.080 align:start position:0%\nthe quick brown\n \n\n"
        "00:00:02.080 --> 00:00:04.630 align:start position:0%\nthe quick brown\n"
        "fox<00:00:02.600><c> jumps</c><00:00:03.000><c> over</c>\n\n"
        "00:00:04.630 --> 00:00:04.640 align:start position:0%\nfox jumps over\n \n\n"
        "00:00:04.640 --> 00:00:06.000 align:start position:0%\nfox jumps over\nthe<00:00:05.000><c> lazy dog</c>\n"
    )

    assert _spans(vtt, "vtt") == [
        (0.16, 2.07, "the quick brown"),
        (2.08, 4.63, "fox jumps over"),
        (4.64, 6.0, "the lazy dog"),
    ]


def test_distinct_cues_are_not_merged() -> None:
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.000\nYes.\n\n00:01.000 --> 00:02.000\nNo.\n\n00:02.000 --> 00:03.000\nYes.\n"

    assert [s.text for s in parse_subtitles(vtt, "vtt")] == ["Yes.", "No.", "Yes."]


def test_well_formed_files_without_cues_are_empty() -> None:
    assert parse_subtitles("WEBVTT\n\nNOTE nothing said\n", "vtt") == []
    assert parse_subtitles("", "srt") == []
    assert parse_subtitles('{"events": []}', "json3") == []


@pytest.mark.parametrize(
    ("data", "ext"),
    [
        ("<!DOCTYPE html><html><body><!-- 404 --> Not Found</body></html>", "vtt"),
        ("just some words\nand more words\n", "srt"),
        ("WEBVTT\n\nthis is not a cue\n", "vtt"),
        ("not json at all", "json3"),
        ('{"captions": []}', "json3"),
        ("WEBVTT\n", "ass"),
    ],
)
def test_garbage_is_a_value_error(data: str, ext: str) -> None:
    with pytest.raises(ValueError, match=r"no \w+ cues|json3|unsupported"):
        parse_subtitles(data, ext)


# --- Cue splitting: blank lines are not the only thing that ends a cue (issue #14) ---


def test_vtt_cue_right_after_the_previous_cues_text() -> None:
    # youtube-dl writes cues without the blank line between them.
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.000\nyeah\nwhat\n00:01.000 --> 00:02.000\nthis will happen\n"

    assert _spans(vtt, "vtt") == [(0.0, 1.0, "yeah\nwhat"), (1.0, 2.0, "this will happen")]


def test_vtt_whitespace_only_line_between_cues() -> None:
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.000\nfirst\n \n00:01.000 --> 00:02.000\nsecond\n"

    assert _spans(vtt, "vtt") == [(0.0, 1.0, "first"), (1.0, 2.0, "second")]


def test_vtt_header_followed_by_a_line_holding_a_space() -> None:
    vtt = "WEBVTT\n \n00:00.000 --> 00:01.000\nfirst\n\n00:01.000 --> 00:02.000\nsecond\n"

    assert _spans(vtt, "vtt") == [(0.0, 1.0, "first"), (1.0, 2.0, "second")]


def test_srt_whitespace_only_separator_line() -> None:
    srt = "1\n00:00:00,000 --> 00:00:01,000\nfirst\n \t\n2\n00:00:01,000 --> 00:00:02,000\nsecond\n"

    assert _spans(srt, "srt") == [(0.0, 1.0, "first"), (1.0, 2.0, "second")]


def test_srt_blank_line_inside_a_cue() -> None:
    srt = "1\n00:00:00,000 --> 00:00:01,000\nfirst line\n\nsecond line\n\n2\n00:00:01,000 --> 00:00:02,000\nnext\n"

    assert _spans(srt, "srt") == [(0.0, 1.0, "first line\nsecond line"), (1.0, 2.0, "next")]


def test_srt_cue_without_blank_line_or_index_before_it() -> None:
    srt = (
        "1\n00:00:00,000 --> 00:00:01,000\nfirst\n"
        "2\n00:00:01,000 --> 00:00:02,000\nsecond\n"
        "00:00:02,000 --> 00:00:03,000\nthird\n"
    )

    assert _spans(srt, "srt") == [(0.0, 1.0, "first"), (1.0, 2.0, "second"), (2.0, 3.0, "third")]


def test_srt_dot_milliseconds_and_short_fractions_read_as_the_libraries_do() -> None:
    # srt, pysrt and webvtt-py all read ",5" as 5 ms (a number of milliseconds, not a fraction).
    srt = "1\n00:00:01.250 --> 00:00:02,5\nHello\n"

    assert _spans(srt, "srt") == [(1.25, 2.005, "Hello")]


# --- Repeats are real content except in rolling automatic captions ---


def test_film_keeps_repeated_exchanges() -> None:
    srt = "".join(
        f"{i}\n00:00:0{i},000 --> 00:00:0{i},900\n{text}\n\n"
        for i, text in enumerate(["- Non!\n- Si!", "- Non!\n- Si!", "Bon."], start=1)
    )

    assert [s.text for s in parse_subtitles(srt, "srt")] == ["- Non!\n- Si!", "- Non!\n- Si!", "Bon."]


def test_bilibili_track_keeps_its_second_ok() -> None:
    srt = (
        "1\n00:00:01,000 --> 00:00:02,000\n好的\n\n"
        "2\n00:00:02,000 --> 00:00:03,000\n好的\n\n"
        "3\n00:00:03,000 --> 00:00:04,000\n我们开始吧\n"
    )

    assert [s.text for s in parse_subtitles(srt, "srt")] == ["好的", "好的", "我们开始吧"]


def test_talk_keeps_a_thank_you_said_again_minutes_later() -> None:
    vtt = (
        "WEBVTT\n\n00:00:10.000 --> 00:00:12.000\nThank you.\n\n"
        "00:04:10.000 --> 00:04:12.000\nThank you.\n\n00:04:12.000 --> 00:04:13.000\nThank you.\n"
    )

    assert [s.text for s in parse_subtitles(vtt, "vtt")] == ["Thank you."] * 3


def test_automatic_captions_flag_merges_rolling_lines_without_marks() -> None:
    vtt = (
        "WEBVTT\n\n00:00.000 --> 00:02.000\nthe quick brown\n\n"
        "00:02.000 --> 00:04.000\nthe quick brown\nfox jumps over\n\n"
        "00:04.000 --> 00:06.000\nfox jumps over\nthe lazy dog\n"
    )

    assert [s.text for s in parse_subtitles(vtt, "vtt", automatic_captions=True)] == [
        "the quick brown",
        "fox jumps over",
        "the lazy dog",
    ]
    assert len(parse_subtitles(vtt, "vtt")) == 3  # the same file as ordinary subtitles keeps every line


# --- Markup: only the tags each format defines ---


@pytest.mark.parametrize("ext", ["vtt", "srt"])
def test_comparison_signs_are_text(ext: str) -> None:
    head = "WEBVTT\n\n" if ext == "vtt" else "1\n"
    timing = "00:00:00.000 --> 00:00:02.000" if ext == "vtt" else "00:00:00,000 --> 00:00:02,000"

    assert _spans(f"{head}{timing}\nif x < 10 and y > 20\n", ext) == [(0.0, 2.0, "if x < 10 and y > 20")]


def test_vtt_ruby_keeps_the_base_text_and_drops_the_reading() -> None:
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.000\n<ruby>漢<rt>kan</rt>字<rt>ji</rt></ruby>です\n"

    assert _spans(vtt, "vtt") == [(0.0, 1.0, "漢字です")]


def test_vtt_defined_tags_go_and_unknown_ones_stay() -> None:
    vtt = (
        "WEBVTT\n\n00:00.000 --> 00:01.000\n"
        "<v.loud Esme>It's</v> <c.yellow.bg_black>a</c> <i>blue</i> <lang en-GB><b><u>apple</u></b></lang> "
        "<00:00:00.500>tree <bad>tag</bad>\n"
    )

    assert _spans(vtt, "vtt") == [(0.0, 1.0, "It's a blue apple tree <bad>tag</bad>")]


def test_vtt_unclosed_tags_do_not_leak() -> None:
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.000\n<i>open italics\n<c.first That's awesome!\n"

    assert _spans(vtt, "vtt") == [(0.0, 1.0, "open italics\nThat's awesome!")]


def test_srt_tags_and_ass_codes_go_and_unknown_ones_stay() -> None:
    srt = '1\n00:00:00,000 --> 00:00:01,000\n{\\an8}<I>Top</I> <font color="#fff">line</font> <3 <s>x</s>\n'

    assert _spans(srt, "srt") == [(0.0, 1.0, "Top line <3 <s>x</s>")]


def test_vtt_decodes_only_complete_character_references() -> None:
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.000\nFish &amp; chips &lt;3 &#x6F22;&#23383; &not me &amp &bogus; &#0;\n"

    assert _spans(vtt, "vtt") == [(0.0, 1.0, "Fish & chips <3 漢字 &not me &amp &bogus; &#0;")]


def test_srt_does_not_decode_entities() -> None:
    srt = "1\n00:00:00,000 --> 00:00:01,000\nAT&amp;T &not me\n"

    assert _spans(srt, "srt") == [(0.0, 1.0, "AT&amp;T &not me")]


# --- Exports read back equal, with our reader and the reference libraries ---

_LINE = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp", "Cf"), exclude_characters="\u00a0"), min_size=1
).map(lambda s: " ".join(s.split()))


@given(st.lists(st.lists(_LINE.filter(bool), min_size=1, max_size=3), min_size=1, max_size=4))
@example([["I <3 you", "a --> b"], ["Tom & Jerry &amp; co", "1"], ["00:00:01,000 --> 00:00:02,000"]])
@settings(max_examples=200, deadline=None)
def test_vtt_export_reads_back_equal(cue_lines: list[list[str]]) -> None:
    transcript = _transcript(cue_lines)
    exported = render(transcript, "vtt")

    ours = [s.text for s in parse_subtitles(exported, "vtt")]
    theirs = [html.unescape(c.text) for c in webvtt.from_string(exported).captions]
    texts = [s.text for s in transcript.segments]
    assert theirs == texts
    assert ours == [_visible_vtt(t) for t in texts]


@given(st.lists(st.lists(_LINE.filter(bool), min_size=1, max_size=3), min_size=1, max_size=4))
@example([["I <3 you", "a --> b"], ["Tom & Jerry &amp; co", "1"], ["00:00:01,000 --> 00:00:02,000"]])
@settings(max_examples=200, deadline=None)
def test_srt_export_reads_back_equal(cue_lines: list[list[str]]) -> None:
    transcript = _transcript(cue_lines)
    exported = render(transcript, "srt")

    texts = [s.text for s in transcript.segments]
    assert [s.content for s in srt.parse(exported)] == texts
    assert [s.text for s in pysrt.from_string(exported)] == texts


def test_exports_round_trip_through_our_reader() -> None:
    texts = ["I <3 you", "Tom & Jerry &amp; co", "a --> b", "if x < 10 and y > 20", "好的", "好的"]
    transcript = _transcript([[t] for t in texts])

    for fmt in ("vtt", "srt"):
        assert [s.text for s in parse_subtitles(render(transcript, fmt), fmt)] == texts, fmt


def _transcript(cue_lines: list[list[str]]) -> Transcript:
    segments = [Segment(start=i, end=i + 0.5, text="\n".join(lines)) for i, lines in enumerate(cue_lines)]
    return Transcript(segments=segments, source=TranscriptSource.SUBTITLES)


def _visible_vtt(text: str) -> str:
    return "\n".join(plain_text(text))


# --- Encodings: BOM, strict UTF-8, then a detector; never U+FFFD ---

CHINESE_SRT = (
    "1\n00:00:01,000 --> 00:00:03,000\n大家好，欢迎收看本期节目。\n\n"
    "2\n00:00:03,000 --> 00:00:05,000\n今天我们来聊一聊字幕。\n"
)


@pytest.mark.parametrize("codec", ["gbk", "gb18030", "gb2312"])
def test_gbk_family_is_detected(codec: str) -> None:
    decoded = decode_subtitles(CHINESE_SRT.encode(codec))

    assert (decoded.text, decoded.encoding, decoded.guessed) == (CHINESE_SRT, "gb18030", True)


def test_big5_is_detected() -> None:
    text = "1\n00:00:01,000 --> 00:00:03,000\n大家好，歡迎收看本期節目。今天我們來聊一聊字幕。\n"

    assert decode_subtitles(text.encode("big5")).text == text


def test_cp1252_is_detected() -> None:
    text = "1\n00:00:01,000 --> 00:00:03,000\nCafé crème, s'il vous plaît — «merci» !\n"

    assert decode_subtitles(text.encode("cp1252")).text == text


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_byte_order_marks_decide(codec: str) -> None:
    data = CHINESE_SRT.encode(codec)
    if not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        data = "\ufeff".encode(codec) + data  # the -le/-be codecs write no mark of their own

    decoded = decode_subtitles(data)

    assert (decoded.text, decoded.guessed) == (CHINESE_SRT, False)


def test_short_gbk_text_is_read_as_chinese() -> None:
    # Four bytes are valid Big5 and GBK alike; the tie goes to GB18030, the likelier here.
    assert decode_subtitles("你好".encode("gbk")).text == "你好"


@pytest.mark.parametrize(
    "data",
    [bytes(range(256)) * 4, b"\xff\xfe\x00\xd8", "WEBVTT\n".encode("utf-16-le")[:-1] + b"\xff\xfe\x00\xdc"],
    ids=["binary", "utf-16-bom-lone-surrogate", "no-bom-garbage"],
)
def test_undecodable_bytes_are_refused_never_replaced(data: bytes) -> None:
    with pytest.raises(UndecodableSubtitles):
        decode_subtitles(data)
