"""What the Store keeps: task records and outbox blocks (JSON-serialisable models)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from actors.models import Priority, TaskOptions, TaskStatus, Transcript, TranscriptSource, VideoInfo

DeliveryState = Literal["pending", "sending", "sent", "failed", "skipped"]


class TaskError(BaseModel):
    """Why a task failed: a stable `code` (see actors/errors.py) and a human message."""

    code: str
    message: str


class Delivery(BaseModel):
    """How far the task's content block got on its way to the WeCom group."""

    state: DeliveryState = "pending"
    parts_total: int = 0
    parts_sent: int = 0
    errcode: int | None = None  # WeCom's own errcode when it refused
    message: str | None = None


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
    attempts: int = 0  # times a worker claimed it
    created_at: float = 0.0  # unix seconds
    updated_at: float = 0.0

    @field_validator("progress")
    @classmethod
    def _clamp_progress(cls, value: float) -> float:
        # Progress is advisory: a rounding overshoot must not fail a stage update.
        return min(max(value, 0.0), 1.0)


class OutboxPart(BaseModel):
    """One WeCom message of a block; `sent_at` is its durable send mark."""

    block_id: int
    seq: int  # 0-based position inside the block
    content: str
    msgtype: str
    sent_at: float | None = None


class OutboxBlock(BaseModel):
    """Messages sent contiguously on one lane: a task's content block or one status notice."""

    block_id: int
    task_id: str
    lane: str = Field(repr=False)  # the webhook URL: a secret
    key: str  # idempotency key within the task ("content", "failed", ...)
    parts: list[OutboxPart]
    priority: Priority = Priority.NORMAL  # carried for priority lanes; ordering is block_id for now
