"""What a video is and what was said in it: the shapes every stage passes along."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class TranscriptSource(StrEnum):
    CACHE = "cache"
    SUBTITLES = "subtitles"
    ASR = "asr"


class VideoInfo(BaseModel):
    """What yt-dlp tells about a video before anything is downloaded."""

    url: str
    platform: str  # yt-dlp extractor key, e.g. "BiliBili", "Youtube", "html5"
    video_id: str
    title: str = ""
    author: str | None = None
    duration: float | None = None  # seconds, when the site says
    # What the page says about itself: Whisper's prompt and the LLM's context (names, terms).
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    language: str | None = None  # the spoken language, when the platform says (yt-dlp "language")

    @property
    def cache_key(self) -> tuple[str, str]:
        """Canonical identity: a short link and its long form share it."""
        return (self.platform.lower(), self.video_id)


class Segment(BaseModel):
    start: float  # seconds
    end: float
    text: str


class Transcript(BaseModel):
    segments: list[Segment]
    language: str | None = None
    duration: float | None = None
    source: TranscriptSource = TranscriptSource.ASR

    @property
    def text(self) -> str:
        return "\n".join(s.text.strip() for s in self.segments if s.text.strip())
