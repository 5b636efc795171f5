"""Request and response bodies of the HTTP API (the README's "HTTP API")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from actors.domain.priority import Priority
from actors.domain.task import Delivery, TaskError, TaskRecord, TaskStatus
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


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=8192)
    options: SubmitOptions = Field(default_factory=SubmitOptions)


class SubmitResponse(BaseModel):
    task_id: str
    status: TaskStatus
    status_url: str
    view_url: str
    cached: bool


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
            created_at=task.created_at,
            updated_at=task.updated_at,
        )
