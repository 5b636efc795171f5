"""The Store: vidscribe's source of truth in one SQLite file (tasks and leases, cache layers,
outbox). Plain class (no Ray); `actors/store.py` runs one in the singleton Serve
deployment, and `actors.storage.client` gives every other part an async, typed view of it.
"""

from __future__ import annotations

from actors.storage.cache import CacheTable
from actors.storage.leases import LeaseTable
from actors.storage.outbox import OutboxTable


class Store(LeaseTable, CacheTable, OutboxTable):
    """Tasks, cache layers and the outbox in one SQLite file; safe to share between threads."""

    def ping(self) -> bool:
        """True while the file is open (the health check)."""
        with self._tx():
            return True
