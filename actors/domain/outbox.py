"""The durable outbox's shapes: blocks of WeCom messages with per-part send marks."""

from __future__ import annotations

from pydantic import BaseModel, Field

from actors.domain.priority import Priority

CONTENT_KEY = "content"  # the key of a task's content block (its notices have their own keys)


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
