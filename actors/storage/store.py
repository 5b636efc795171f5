"""The Store: vidscribe's source of truth in one SQLite file (tasks and leases, cache layers,
outbox). Plain class (no Ray); `actors/store.py` runs one in the singleton Serve
deployment, and `actors.storage.client` gives every other part an async, typed view of it.
"""

from __future__ import annotations

import time
from typing import Literal

from actors.domain.outbox import CONTENT_KEY
from actors.domain.task import Delivery, TaskError, TaskStatus
from actors.storage.cache import CacheTable
from actors.storage.leases import LeaseTable
from actors.storage.outbox import (
    OutboxTable,
    drop_abandoned_blocks,
    find_block,
    requeue_block,
    stop_unsent_blocks,
)

CancelOutcome = Literal["cancelled", "finished", "sending"]

STORE_FILE = "vidscribe.db"  # the Store's file in the data dir


class Store(LeaseTable, CacheTable, OutboxTable):
    """Tasks, cache layers and the outbox in one SQLite file; safe to share between threads."""

    def redeliver(self, task_id: str) -> bool:
        """Send the task's content block again, whole, after its delivery was parked or the
        group lost it; the task goes back to delivering. False when there is nothing to send
        again: no content block yet, or it is being sent now. KeyError if the task is unknown."""
        with self._tx(write=True) as db:
            record = self._load(db, task_id)
            found = find_block(db, task_id, CONTENT_KEY)
            if found is None or record.status in (TaskStatus.DELIVERING, TaskStatus.CANCELLED):
                return False
            block_id, _, parts_total = found
            requeue_block(db, block_id)
            record.status, record.error, record.progress = TaskStatus.DELIVERING, None, 0.0
            record.delivery = Delivery(state="sending", parts_total=parts_total)
            record.updated_at = time.time()
            self._write(db, record, ("status", "error", "progress", "delivery", "updated_at"))
            return True

    def cancel(self, task_id: str) -> CancelOutcome:
        """Cancel an unfinished task: "cancelled" (its worker stops at its next step, its blocks
        still to send are dropped), "finished" (nothing to cancel) or "sending" (its content
        block is part-way out: it finishes whole, a group never sees half a block). KeyError if
        the task is unknown."""
        with self._tx(write=True) as db:
            record = self._load(db, task_id)
            if record.status.finished:
                return "finished"
            found = find_block(db, task_id, CONTENT_KEY)
            if found is not None and 0 < found[1] < found[2]:
                return "sending"
            stop_unsent_blocks(db, task_id, "cancelled")
            record.status = TaskStatus.CANCELLED
            record.error = TaskError(code="cancelled", message="cancelled on request")
            record.updated_at = time.time()
            self._write(db, record, ("status", "error", "updated_at"))
            return "cancelled"

    def retry(self, task_id: str) -> bool:
        """Queue a failed or cancelled task again: it runs from its first missing step (its stored
        transcript and texts, and the cache layers, are reused) and is delivered as if new.
        False for any other status; KeyError if the task is unknown."""
        with self._tx(write=True) as db:
            record = self._load(db, task_id)
            if record.status not in (TaskStatus.FAILED, TaskStatus.CANCELLED):
                return False
            drop_abandoned_blocks(db, task_id)
            record.status, record.error, record.attempts = TaskStatus.QUEUED, None, 0
            record.progress, record.progress_detail, record.delivery = 0.0, {}, Delivery()
            record.updated_at = time.time()
            fields = ("status", "error", "attempts", "progress", "progress_detail", "delivery", "updated_at")
            self._write(db, record, fields)
            return True

    def ping(self) -> bool:
        """True while the file is open (the health check)."""
        with self._tx():
            return True
