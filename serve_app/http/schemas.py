"""Request and response bodies of the HTTP API (the README's "HTTP API")."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from actors.domain.priority import Priority
from actors.domain.task import Delivery, TaskError, TaskRecord, TaskStatus, TokenUsage
from actors.domain.video import TranscriptSource, VideoInfo


class SubmitOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proofread: bool = True
    summary: bool = True
    language: str | None = Field(default=None, max_length=16, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    priority: Priority = Priority.NORMAL
    webhook_url: str | None = Field(
        default=None, max_length=2048, description="Deliver to this WeCom robot instead of the client's group."
    )
    playlist_items: str | None = Field(
        default=None,
        max_length=200,
        description='Items of a playlist link to transcribe, 1-based: "1-5", "2,4,7-9". Each becomes a task '
        "of its own, delivered in this order; at most media.max_playlist_items.",
    )

    @field_validator("playlist_items")
    @classmethod
    def _check_items(cls, value: str | None) -> str | None:
        if value is not None:
            item_ranges(value)  # ValueError: a 422 that says what is wrong
        return value


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=8192)
    options: SubmitOptions = Field(default_factory=SubmitOptions)


_ITEM_RANGE = re.compile(r"\s*(\d{1,9})\s*(?:-\s*(\d{1,9})\s*)?")


def item_ranges(spec: str) -> list[tuple[int, int]]:
    """ "1-3,7" -> [(1, 3), (7, 7)]: 1-based, each range ascending; ValueError otherwise."""
    ranges = []
    for part in spec.split(","):
        match = _ITEM_RANGE.fullmatch(part)
        if match is None:
            raise ValueError('playlist_items is written like "1-5" or "2,4,7-9"')
        first, last = int(match[1]), int(match[2] or match[1])
        if first < 1 or last < first:
            raise ValueError(f"playlist_items: {part.strip()!r} is not an ascending range of items from 1")
        ranges.append((first, last))
    return ranges


def item_numbers(spec: str, limit: int) -> list[int]:
    """The item numbers `spec` asks for, in its order, each once; ValueError beyond `limit` items."""
    ranges = item_ranges(spec)
    if sum(last - first + 1 for first, last in ranges) > limit * 2:  # never expand a huge range
        raise ValueError(f"playlist_items asks for more than {limit} items; at most {limit} per request")
    numbers = list(dict.fromkeys(n for first, last in ranges for n in range(first, last + 1)))
    if len(numbers) > limit:
        raise ValueError(f"playlist_items asks for {len(numbers)} items; at most {limit} per request")
    return numbers


class SubmitResponse(BaseModel):
    task_id: str  # the first (or only) task; with playlist_items, the first item's
    status: TaskStatus
    status_url: str
    view_url: str
    cached: bool
    task_ids: list[str] = Field(description="Every task the request made or found, one per playlist item in order.")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class TaskView(BaseModel):
    """What `GET /api/task/{id}` shows; never the webhook or any secret."""

    task_id: str
    status: TaskStatus
    progress: dict[str, Any]
    source: TranscriptSource | None
    cached: bool
    video: VideoInfo | None
    transcript: str | None
    proofread: str | None
    summary: str | None
    warnings: list[str]
    error: TaskError | None
    delivery: Delivery
    llm_usage: dict[str, TokenUsage] = Field(
        description="Tokens each LLM step (proofread, summary) cost, as the server counted them"
    )
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, task: TaskRecord) -> TaskView:
        return cls(
            task_id=task.task_id,
            status=task.status,
            progress={"stage": task.status.value, "fraction": task.progress, **task.progress_detail},
            source=task.source,
            cached=task.cached,
            video=task.video,
            transcript=task.transcript.text if task.transcript else None,
            proofread=task.proofread,
            summary=task.summary,
            warnings=task.warnings,
            error=task.error,
            delivery=task.delivery,
            llm_usage=task.llm_usage,
            created_at=task.created_at,
            updated_at=task.updated_at,
        )
