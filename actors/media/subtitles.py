"""Subtitle files (WebVTT, SRT, YouTube json3) to transcript segments; pure parsing, no network.

WebVTT is read by webvtt-py (the W3C block rules: a cue ends at an empty line or at a line
holding "-->"; timestamps read leniently, as `0:0:1.5` from Teams), SRT by `srt` (missing
blank lines, blank lines inside a cue, comma or dot before the milliseconds). What they lack
is here: json3, the visible text of a cue (`subtitle_markup`) and merging the rolling lines
of YouTube-style automatic captions. Every other cue is kept, repeats included.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import srt
import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from actors.domain.video import Segment
from actors.media.subtitle_markup import VTT_TIMESTAMP_TAG, plain_text, srt_text, vtt_text

SUPPORTED_EXTS = ("vtt", "srt", "json3")

# W3C: "WEBVTT" then a space, a tab, a line break or the end; "WEBVTTX" is not a WebVTT file.
_WEBVTT_SIGNATURE = re.compile(r"WEBVTT(?:[ \t\r\n]|\Z)")
# Blocks a WebVTT file may hold besides cues (the header is the first block).
_VTT_METADATA_BLOCK = re.compile(r"(?:NOTE|STYLE|REGION)(?:[ \t\n]|\Z)")
# A whole SRT timing line: inside a cue's text it starts the next cue (no blank line before it).
_SRT_TIMING_LINE = re.compile(r"^[ \t]*(\d+:\d+:\d+[,.]\d*)[ \t]*-[ -]*>[ \t]*(\d+:\d+:\d+[,.]\d*)(?:[ \t].*)?$")


@dataclass
class _Cue:
    start: float  # seconds
    end: float
    lines: list[str]  # visible text
    word_timings: bool = False  # inline <00:00:01.000> timestamps
    youtube_position: bool = False  # `align:start position:0%`, where YouTube puts every auto caption


def parse_subtitles(data: str, ext: str, *, automatic_captions: bool = False) -> list[Segment]:
    """Segments of a subtitle file, markup removed.

    `automatic_captions`: the track is a site's automatic captions (yt-dlp's
    `automatic_captions`), whose cues roll: each repeats the previous line. Those repeats are
    dropped there, and in files that carry the marks of such captions (inline word timestamps,
    every cue at `align:start position:0%`); every other file keeps every cue.

    Raises ValueError when `ext` is unsupported or `data` is not a subtitle file of that kind.
    A well-formed file without cues gives an empty list.
    """
    ext = ext.lower().lstrip(".")
    data = data.removeprefix("\ufeff")
    if ext == "vtt":
        cues = _vtt_cues(data)
    elif ext == "srt":
        cues = _srt_cues(data)
    elif ext == "json3":
        return _segments(_json3_cues(data))  # json3 events carry each word once: nothing rolls
    else:
        raise ValueError(f"unsupported subtitle format {ext!r}")
    if automatic_captions or _looks_rolling(cues):
        return _drop_rolling_repeats(cues)
    return _segments(cues)


def _looks_rolling(cues: list[_Cue]) -> bool:
    """The marks of YouTube's automatic captions: word timings, or every cue at its position."""
    return any(c.word_timings for c in cues) or (bool(cues) and all(c.youtube_position for c in cues))


def _vtt_cues(data: str) -> list[_Cue]:
    if not _WEBVTT_SIGNATURE.match(data):
        raise ValueError("no vtt cues: the file does not start with WEBVTT")
    try:
        captions = webvtt.from_string(data).captions
    except (MalformedFileError, MalformedCaptionError) as e:
        raise ValueError(f"no vtt cues: {e}") from e
    cues = [
        _Cue(
            start=c.start_time.in_milliseconds() / 1000,
            end=c.end_time.in_milliseconds() / 1000,
            lines=vtt_text(c.raw_text),
            word_timings=VTT_TIMESTAMP_TAG.search(c.raw_text) is not None,
            youtube_position=c.settings.align == "start" and c.settings.position == "0%",
        )
        for c in captions
    ]
    if not cues and not _is_empty_vtt(data):
        raise ValueError("no vtt cues found")
    return cues


def _is_empty_vtt(data: str) -> bool:
    """True for a WebVTT file whose blocks after the header are all NOTE, STYLE or REGION."""
    text = data.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [b for b in re.split(r"\n{2,}", text) if b.strip()]
    return all(_VTT_METADATA_BLOCK.match(b) for b in blocks[1:])


def _srt_cues(data: str) -> list[_Cue]:
    text = data.replace("\r\n", "\n").replace("\r", "\n")
    cues: list[_Cue] = []
    for sub in srt.parse(text, ignore_errors=True):  # junk between cues is skipped, not fatal
        parts = _split_at_timing_lines(sub.start.total_seconds(), sub.end.total_seconds(), sub.content)
        cues.extend(_Cue(start=start, end=end, lines=srt_text(content)) for start, end, content in parts)
    if not cues and text.strip():
        raise ValueError("no srt cues found")
    return cues


def _split_at_timing_lines(start: float, end: float, content: str) -> list[tuple[float, float, str]]:
    """A cue's text split where a timing line follows text without a blank line (or index)."""
    parts: list[tuple[float, float, list[str]]] = [(start, end, [])]
    for line in content.split("\n"):
        match = _SRT_TIMING_LINE.match(line)
        if match is None:
            parts[-1][2].append(line)
            continue
        begin, finish = (srt.srt_timestamp_to_timedelta(t).total_seconds() for t in match.groups())
        parts.append((begin, finish, []))
    return [(s, e, "\n".join(lines)) for s, e, lines in parts]


def _json3_cues(data: str) -> list[_Cue]:
    """Cues of YouTube's json3 timed text: events of `segs`, times in milliseconds."""
    try:
        doc: Any = json.loads(data)
    except json.JSONDecodeError as e:
        raise ValueError(f"not json3: {e}") from e
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise ValueError("not json3: no 'events' list")
    cues = []
    for event in events:
        segs = event.get("segs") if isinstance(event, dict) else None
        if not isinstance(segs, list):
            continue  # window/style definitions carry no text
        lines = plain_text("".join(str(seg.get("utf8", "")) for seg in segs if isinstance(seg, dict)))
        if not lines:
            continue  # the "\n" append events of rolling captions
        start = float(event.get("tStartMs", 0)) / 1000
        end = start + float(event.get("dDurationMs", 0)) / 1000
        cues.append(_Cue(start=start, end=end, lines=lines))
    return cues


def _segments(cues: list[_Cue]) -> list[Segment]:
    # A cue ending before it starts is shown for no time; its words were still said.
    return [Segment(start=c.start, end=max(c.start, c.end), text="\n".join(c.lines)) for c in cues if c.lines]


def _drop_rolling_repeats(cues: list[_Cue]) -> list[Segment]:
    """Segments with the lines a cue repeats from the previous one removed.

    Rolling (YouTube-style automatic) captions show each line twice: a cue is the
    previous cue's last line(s) plus a new line, and short "transition" cues repeat
    a line alone. Only a cue's leading lines that equal the previous cue's trailing
    lines are dropped; nothing is merged.
    """
    segments: list[Segment] = []
    previous: list[str] = []
    for cue in cues:
        overlap = _overlap(previous, cue.lines)
        new = cue.lines[overlap:]
        previous = cue.lines
        if new:
            segments.append(Segment(start=cue.start, end=max(cue.start, cue.end), text="\n".join(new)))
    return segments


def _overlap(previous: list[str], lines: list[str]) -> int:
    """Length of the longest suffix of `previous` that `lines` starts with."""
    for size in range(min(len(previous), len(lines)), 0, -1):
        if previous[-size:] == lines[:size]:
            return size
    return 0
