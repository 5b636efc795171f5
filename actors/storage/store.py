"""The Store: vidscribe's source of truth in one SQLite file (tasks and leases, cache layers,
outbox). Plain class (no Ray); `actors/store.py` runs one in the singleton Serve
deployment, and `actors.storage.client` gives every other part an async, typed view of it.
"""

from __future__ import annotations

import time

from actors.domain.outbox import CONTENT_KEY
from actors.domain.task import Delivery, TaskStatus
from actors.storage.cache import CacheTable
from actors.storage.leases import LeaseTable
from actors.storage.outbox import OutboxTable, find_block, requeue_block

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
            if found is None or record.status is TaskStatus.DELIVERING:
                return False
            block_id, _, parts_total = found
            requeue_block(db, block_id)
            record.status, record.error, record.progress = TaskStatus.DELIVERING, None, 0.0
            record.delivery = Delivery(state="sending", parts_total=parts_total)
            record.updated_at = time.time()
            self._write(db, record, ("status", "error", "progress", "delivery", "updated_at"))
            return True

    def ping(self) -> bool:
        """True while the file is open (the health check)."""
        with self._tx():
            return True
