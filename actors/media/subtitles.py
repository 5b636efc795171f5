"""Subtitle files (WebVTT, SRT, YouTube json3) to transcript segments; pure parsing, no network."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any

from actors.domain.video import Segment

SUPPORTED_EXTS = ("vtt", "srt", "json3")

# "01:02:03.456", "02:03.456" (WebVTT may omit hours), "01:02:03,456" (SRT); lenient on both.
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_TAG = re.compile(r"<[^>]*>")  # <c>, <i>, <v Speaker>, <00:00:01.000>, <font ...>
_ASS_OVERRIDE = re.compile(r"\{\\[^}]*\}")  # {\an8} and similar in SRT exported from ASS
_SPACES = re.compile(r"[ \t\u00a0]+")
_INVISIBLE = str.maketrans("", "", "\u200b\u200e\u200f\ufeff")


def parse_subtitles(data: str, ext: str) -> list[Segment]:
    """Segments of a subtitle file; tags and cue settings stripped, rolling-caption repeats dropped.

    Raises ValueError when `ext` is unsupported or `data` is not a subtitle file of that kind.
    A well-formed file without cues gives an empty list.
    """
    ext = ext.lower().lstrip(".")
    data = data.lstrip("\ufeff")
    if ext in ("vtt", "srt"):
        cues = _parse_cues(data, ext)
    elif ext == "json3":
        cues = _parse_json3(data)
    else:
        raise ValueError(f"unsupported subtitle format {ext!r}")
    return _drop_rolling_repeats(cues)


def _parse_cues(data: str, ext: str) -> list[tuple[float, float, list[str]]]:
    """(start, end, text lines) of every cue in a WebVTT or SRT file."""
    text = data.replace("\r\n", "\n").replace("\r", "\n")
    cues: list[tuple[float, float, list[str]]] = []
    # WebVTT ends a cue only at an empty line: YouTube's cues start with a line holding one
    # space. SRT files in the wild separate cues with whitespace-only lines too.
    separator = r"\n\n" if ext == "vtt" else r"\n[ \t]*\n"
    for block in re.split(separator, text):
        lines = block.strip("\n").split("\n")
        # The timing line is the first or (after a cue id / SRT counter) the second line.
        index = next((i for i, line in enumerate(lines[:2]) if "-->" in line), None)
        if index is None:
            continue  # WEBVTT header, NOTE, STYLE, REGION or stray text
        match = _TIMING.match(lines[index])
        if match is None:
            continue  # a broken cue (or an HTML comment in an error page); the rest may be fine
        start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
        cues.append((start, max(start, end), _clean_lines(lines[index + 1 :])))
    if not cues and not _is_empty_file(text, ext):
        raise ValueError(f"no {ext} cues found")
    return cues


def _is_empty_file(text: str, ext: str) -> bool:
    """True for a well-formed file without cues: blank SRT, or a WEBVTT header with only metadata blocks."""
    if ext == "srt":
        return not text.strip()
    blocks = [b.strip() for b in re.split(r"\n[ \t]*\n", text) if b.strip()]
    return (
        bool(blocks)
        and re.match(r"WEBVTT(?:[ \t\n]|$)", blocks[0]) is not None
        and all(b.startswith(("NOTE", "STYLE", "REGION")) for b in blocks[1:])
    )


def _seconds(hours: str | None, minutes: str, seconds: str, fraction: str | None) -> float:
    millis = int((fraction or "0").ljust(3, "0"))
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + millis / 1000


def _clean_lines(lines: Iterable[str]) -> list[str]:
    """Visible text of cue lines: no markup, entities decoded, blank lines dropped."""
    cleaned = []
    for line in lines:
        text = html.unescape(_ASS_OVERRIDE.sub("", _TAG.sub("", line))).translate(_INVISIBLE)
        text = _SPACES.sub(" ", text).strip()
        if text:
            cleaned.append(text)
    return cleaned


def _parse_json3(data: str) -> list[tuple[float, float, list[str]]]:
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
        text = "".join(str(seg.get("utf8", "")) for seg in segs if isinstance(seg, dict))
        lines = _clean_lines(text.split("\n"))
        if not lines:
            continue  # the "\n" append events of rolling captions
        start = float(event.get("tStartMs", 0)) / 1000
        end = start + float(event.get("dDurationMs", 0)) / 1000
        cues.append((start, end, lines))
    return cues


def _drop_rolling_repeats(cues: list[tuple[float, float, list[str]]]) -> list[Segment]:
    """Segments with the lines a cue repeats from the previous one removed.

    Rolling (YouTube-style automatic) captions show each line twice: a cue is the
    previous cue's last line(s) plus a new line, and short "transition" cues repeat
    a line alone. Only a cue's leading lines that equal the previous cue's trailing
    lines are dropped; nothing is merged.
    """
    segments: list[Segment] = []
    previous: list[str] = []
    for start, end, lines in cues:
        overlap = _overlap(previous, lines)
        new = lines[overlap:]
        previous = lines
        if new:
            segments.append(Segment(start=start, end=end, text="\n".join(new)))
    return segments


def _overlap(previous: list[str], lines: list[str]) -> int:
    """Length of the longest suffix of `previous` that `lines` starts with."""
    for size in range(min(len(previous), len(lines)), 0, -1):
        if previous[-size:] == lines[:size]:
            return size
    return 0
