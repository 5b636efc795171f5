"""Domain shapes passed between modules and across Ray processes."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RESOLVING = "resolving"
    DOWNLOADING = "downloading"
    TRANSCRIBING = "transcribing"
    PROOFREADING = "proofreading"
    SUMMARIZING = "summarizing"
    DELIVERING = "delivering"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.DONE, TaskStatus.FAILED)


# Stages owned by the Transcriber pool: a task here is waiting for, or held by, a worker.
PRE_LLM_STAGES = (TaskStatus.QUEUED, TaskStatus.RESOLVING, TaskStatus.DOWNLOADING, TaskStatus.TRANSCRIBING)


class TranscriptSource(StrEnum):
    CACHE = "cache"
    SUBTITLES = "subtitles"
    ASR = "asr"


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class VideoInfo(BaseModel):
    """What yt-dlp tells about a video before anything is downloaded."""

    url: str
    platform: str  # yt-dlp extractor key, e.g. "BiliBili", "Youtube", "html5"
    video_id: str
    title: str = ""
    author: str | None = None
    duration: float | None = None  # seconds, when the site says

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


class TaskOptions(BaseModel):
    proofread: bool = True
    summary: bool = True
    language: str | None = Field(default=None, max_length=16)
    priority: Priority = Priority.NORMAL
