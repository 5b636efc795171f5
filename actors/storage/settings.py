"""The store's settings section: how long it keeps what (read by actors/storage/retention.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RetentionSettings(BaseModel):
    """What the Store keeps, and how its background pruner deletes the rest."""

    task_days: float = Field(
        30,
        ge=0,
        description="Days a finished task (done, failed, ...) is kept after its last change; then it is "
        "deleted with its outbox blocks and its API and view answer 404. Blocks still to send are never "
        "deleted. 0 keeps tasks forever.",
    )
    cache_mb: float = Field(
        512,
        ge=0,
        description="MiB of cache layers (metadata, transcript, proofread, summary per video) kept; beyond "
        "it the least recently used layers are evicted. 0: no limit.",
    )
    interval_s: float = Field(
        3600,
        gt=0,
        description="Seconds between the Store's prune runs (the first runs at start-up), in the background.",
    )
    batch_size: int = Field(
        100,
        ge=1,
        description="Tasks or cache layers deleted per transaction while pruning: submissions are answered "
        "between batches, so smaller batches keep them quicker.",
    )
