"""Rendered transcripts parse back to the same cues, text and timing."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from actors.domain.formats import media_type, render, timestamp
from actors.domain.video import Segment, Transcript, TranscriptSource

TRANSCRIPT = Transcript(
    segments=[
        Segment(start=0.0, end=2.5, text=" The quick brown fox."),
        Segment(start=2.5, end=61.0004, text="今天天气很好，我们去公园。"),
        Segment(start=61.2, end=61.2, text="Tom & Jerry <live>"),
        Segment(start=70.0, end=71.0, text="   "),  # nothing to show: dropped from subtitles
        Segment(start=3725.0675, end=3727.9, text="first line\n\nsecond line"),
    ],
    language="zh",
    duration=3728.0,
    source=TranscriptSource.ASR,
)

SRT_TIME = r"(\d{2,}):(\d{2}):(\d{2}),(\d{3})"
VTT_TIME = r"(\d{2,}):(\d{2}):(\d{2})\.(\d{3})"


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(text: str) -> list[tuple[int, float, float, str]]:
    cues = []
    for block in text.strip().split("\n\n"):
        index, timing, *lines = block.split("\n")
        match = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", timing)
        assert match, timing
        g = match.groups()
        cues.append((int(index), seconds(*g[:4]), seconds(*g[4:]), "\n".join(lines)))
    return cues


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    header, *blocks = text.strip().split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for block in blocks:
        timing, *lines = block.split("\n")
        match = re.fullmatch(f"{VTT_TIME} --> {VTT_TIME}", timing)
        assert match, timing
        g = match.groups()
        cues.append((seconds(*g[:4]), seconds(*g[4:]), "\n".join(lines)))
    return cues


def test_srt_cues_are_numbered_and_timed() -> None:
    cues = parse_srt(render(TRANSCRIPT, "srt"))

    assert [c[0] for c in cues] == [1, 2, 3, 4]
    assert [(c[1], c[2]) for c in cues] == [(0.0, 2.5), (2.5, 61.0), (61.2, 61.2), (3725.068, 3727.9)]
    assert [c[3] for c in cues] == [
        "The quick brown fox.",
        "今天天气很好，我们去公园。",
        "Tom & Jerry <live>",
        "first line\nsecond line",  # a blank line would end the cue early
    ]


def test_vtt_has_header_dotted_times_and_escaped_text() -> None:
    text = render(TRANSCRIPT, "vtt")
    cues = parse_vtt(text)

    assert text.startswith("WEBVTT\n\n")
    assert [(c[0], c[1]) for c in cues] == [(0.0, 2.5), (2.5, 61.0), (61.2, 61.2), (3725.068, 3727.9)]
    assert cues[2][2] == "Tom &amp; Jerry &lt;live&gt;"
    assert cues[3][2] == "first line\nsecond line"


def test_json_carries_everything() -> None:
    data = json.loads(render(TRANSCRIPT, "json"))

    assert data["language"] == "zh"
    assert data["duration"] == 3728.0
    assert data["source"] == "asr"
    assert data["segments"][1] == {"start": 2.5, "end": 61.0004, "text": "今天天气很好，我们去公园。"}
    assert len(data["segments"]) == 5
    assert data["text"] == TRANSCRIPT.text
    assert "今天" in render(TRANSCRIPT, "json")  # readable UTF-8, not \u escapes


def test_txt_is_the_plain_text() -> None:
    text = render(TRANSCRIPT, "txt")

    assert text.splitlines() == [
        "The quick brown fox.",
        "今天天气很好，我们去公园。",
        "Tom & Jerry <live>",
        "first line",
        "",
        "second line",
    ]
    assert text.endswith("\n")


def test_empty_transcript_renders_validly() -> None:
    empty = Transcript(segments=[], language=None, duration=3.0, source=TranscriptSource.SUBTITLES)

    assert render(empty, "txt") == ""
    assert render(empty, "srt") == ""
    assert parse_vtt(render(empty, "vtt")) == []
    assert json.loads(render(empty, "json"))["segments"] == []


def test_media_types() -> None:
    assert media_type("srt").startswith("application/x-subrip")
    assert media_type("vtt").startswith("text/vtt")
    assert media_type("json") == "application/json"
    assert media_type("txt").startswith("text/plain")


@given(st.floats(min_value=0, max_value=360_000, allow_nan=False))
def test_timestamps_round_trip_to_the_millisecond(value: float) -> None:
    srt = re.fullmatch(SRT_TIME, timestamp(value))
    vtt = re.fullmatch(VTT_TIME, timestamp(value, "."))
    assert srt
    assert vtt
    assert round(seconds(*srt.groups()) * 1000) == round(value * 1000)
    assert srt.groups() == vtt.groups()
