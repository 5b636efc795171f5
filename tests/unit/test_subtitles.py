"""Subtitle parsing: WebVTT, SRT and YouTube json3 to timed segments."""

from __future__ import annotations

import json

import pytest

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
