"""Transcript renderings users download: plain text, SRT, WebVTT and JSON. Plain module, no Ray."""

from __future__ import annotations

import json
from typing import Literal, get_args

from actors.domain.video import Segment, Transcript

TranscriptFormat = Literal["txt", "srt", "vtt", "json"]
FORMATS: tuple[TranscriptFormat, ...] = get_args(TranscriptFormat)

# charset spelled out: Chinese text, and clients guess wrong for application/* types.
_MEDIA_TYPES: dict[TranscriptFormat, str] = {
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
}


def render(transcript: Transcript, fmt: TranscriptFormat) -> str:
    """Render a transcript as txt, srt, vtt or json text."""
    if fmt == "txt":
        return _txt(transcript)
    if fmt == "srt":
        return _srt(transcript)
    if fmt == "vtt":
        return _vtt(transcript)
    if fmt == "json":
        return _json(transcript)
    raise ValueError(f"unknown transcript format {fmt!r}; expected one of {', '.join(FORMATS)}")


def media_type(fmt: TranscriptFormat) -> str:
    """The HTTP Content-Type for a rendered format."""
    return _MEDIA_TYPES[fmt]


def _split_ms(ms: int) -> tuple[int, int, int, int]:
    """(hours, minutes, seconds, milliseconds) of a duration in milliseconds."""
    hours, ms = divmod(max(0, ms), 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return hours, minutes, secs, ms


def timestamp(seconds: float, decimal: str = ",") -> str:
    """HH:MM:SS,mmm (SRT) or, with decimal=".", HH:MM:SS.mmm (WebVTT)."""
    hours, minutes, secs, ms = _split_ms(round(seconds * 1000))
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def clock(seconds: float) -> str:
    """M:SS below an hour, else H:MM:SS (whole seconds, as a reader sees a video's time)."""
    hours, minutes, secs, _ = _split_ms(int(max(0.0, seconds)) * 1000)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _cues(transcript: Transcript) -> list[tuple[float, float, str]]:
    # A blank line ends a cue in both SRT and WebVTT, so text lines must never be empty;
    # a zero/negative span would be dropped by players, so end is at least start.
    cues = []
    for seg in transcript.segments:
        lines = [line.strip() for line in seg.text.splitlines() if line.strip()]
        if lines:
            cues.append((seg.start, max(seg.end, seg.start), "\n".join(lines)))
    return cues


def _txt(transcript: Transcript) -> str:
    text = transcript.text
    return f"{text}\n" if text else ""


def _srt(transcript: Transcript) -> str:
    blocks = [
        f"{i}\n{timestamp(start)} --> {timestamp(end)}\n{text}\n"
        for i, (start, end, text) in enumerate(_cues(transcript), start=1)
    ]
    return "\n".join(blocks)


def _vtt(transcript: Transcript) -> str:
    blocks = ["WEBVTT\n"]
    for start, end, text in _cues(transcript):
        # WebVTT cue text is markup: a bare & or < would be read as an entity or a tag.
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{timestamp(start, '.')} --> {timestamp(end, '.')}\n{escaped}\n")
    return "\n".join(blocks)


def _json(transcript: Transcript) -> str:
    payload = {
        "language": transcript.language,
        "duration": transcript.duration,
        "source": transcript.source.value,
        "segments": [_segment_dict(s) for s in transcript.segments],
        "text": transcript.text,
    }
    return json.dumps(payload, ensure_ascii=False, indent=2) + "\n"


def _segment_dict(segment: Segment) -> dict[str, float | str]:
    return {"start": segment.start, "end": segment.end, "text": segment.text}
