"""A task: one submitted link, its stage in the pipeline and everything known about it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from actors.domain.priority import Priority
from actors.domain.video import Transcript, TranscriptSource, VideoInfo


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
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED)


# Stages owned by the Transcriber pool: a task here is waiting for, or held by, a worker.
PRE_LLM_STAGES = (TaskStatus.QUEUED, TaskStatus.RESOLVING, TaskStatus.DOWNLOADING, TaskStatus.TRANSCRIBING)
# Stages owned by the LLMSender: the transcript is there, proofreading and delivery are not done.
LLM_STAGES = (TaskStatus.PROOFREADING, TaskStatus.SUMMARIZING, TaskStatus.DELIVERING)


class TaskOptions(BaseModel):
    proofread: bool = True
    summary: bool = True
    language: str | None = Field(default=None, max_length=16)
    priority: Priority = Priority.NORMAL
    # Which item of a playlist link this task is (1-based); None: the link's own video.
    playlist_item: int | None = Field(default=None, ge=1)
    # Shared by the items one request asked for: their blocks reach the group in item order.
    series: str | None = None


DeliveryState = Literal["pending", "sending", "sent", "failed", "skipped"]


class TaskError(BaseModel):
    """Why a task failed: a stable `code` (see actors/domain/errors.py) and a human message."""

    code: str
    message: str


class Delivery(BaseModel):
    """How far the task's content block got on its way to the WeCom group."""

    state: DeliveryState = "pending"
    parts_total: int = 0
    parts_sent: int = 0
    errcode: int | None = None  # WeCom's own errcode when it refused
    message: str | None = None


class TokenUsage(BaseModel):
    """Tokens one LLM step of a task cost, as the server counted them (`usage`), and with which model."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Submission(BaseModel):
    """A link as the gateway accepted it: what `Store.create_tasks` turns into a task."""

    url: str
    options: TaskOptions
    client: str | None = None
    webhook: str | None = None  # the delivery lane (a secret URL); None: the default group


class TaskRecord(BaseModel):
    """One submitted link and everything known about it; the Store's unit of truth."""

    # Assignments are validated, so `Store.update_task(delivery={...})` gets a real Delivery.
    model_config = ConfigDict(validate_assignment=True)

    task_id: str  # secrets.token_urlsafe(16): 128 random bits, unguessable
    url: str
    client: str | None = None
    # The delivery lane is a secret URL (it embeds the robot key): never in API output,
    # dumps or reprs. It still travels in pickles, so Ray callers see it.
    webhook: str | None = Field(default=None, exclude=True, repr=False)
    options: TaskOptions = Field(default_factory=TaskOptions)
    priority: Priority = Priority.NORMAL
    status: TaskStatus = TaskStatus.QUEUED
    progress: float = 0.0  # 0..1 within the current stage
    progress_detail: dict[str, Any] = Field(default_factory=dict)
    source: TranscriptSource | None = None
    cached: bool = False
    video: VideoInfo | None = None
    transcript: Transcript | None = None
    proofread: str | None = None
    summary: str | None = None
    warnings: list[str] = Field(default_factory=list)
    error: TaskError | None = None
    delivery: Delivery = Field(default_factory=Delivery)
    llm_usage: dict[str, TokenUsage] = Field(default_factory=dict)  # step (proofread, summary) -> tokens
    attempts: int = 0  # times a worker claimed it
    created_at: float = 0.0  # unix seconds
    updated_at: float = 0.0

    @field_validator("progress")
    @classmethod
    def _clamp_progress(cls, value: float) -> float:
        # Progress is advisory: a rounding overshoot must not fail a stage update.
        return min(max(value, 0.0), 1.0)
