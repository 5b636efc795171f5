"""Store deployment: the SQLite source of truth as a Ray Serve singleton.

The deployment holds one `Store`; every other deployment reaches it through
`HandleStoreClient` (actors/storage/client.py: the typed client over its handle), so the state
lives in one process and survives the restart of any other part. Every status change
passes through here, which is where the task metrics are fed. Retention runs here too:
a background thread prunes the file in small batches (actors/storage/retention.py).
"""

from __future__ import annotations

from typing import Any

from actors.metrics import TaskLifecycle, store_pruned
from actors.settings import PipelineSettings
from actors.storage.client import run_operation
from actors.storage.retention import Pruner
from actors.storage.store import STORE_FILE, Store
from actors.storage.tasks import QueueFull


class StoreDeployment:
    """The singleton that owns the SQLite file."""

    def __init__(self, settings: PipelineSettings) -> None:
        self._store = Store(settings.data_dir / STORE_FILE)
        self._lifecycle = TaskLifecycle(self._store.count_unfinished)
        self._pruner = Pruner(self._store, settings.retention, on_batch=store_pruned)
        self._pruner.start()

    def call(self, operation: str, /, *args: Any, **kwargs: Any) -> Any:
        """Run one Store operation (Serve runs this sync method in its thread pool)."""
        result = run_operation(self._store, operation, *args, **kwargs)
        self._observe(operation, result, kwargs)
        return result

    def _observe(self, operation: str, result: Any, fields: dict[str, Any]) -> None:
        """Feed the task metrics: new tasks and status changes."""
        if operation == "create_tasks":
            for outcome in result:
                if not isinstance(outcome, QueueFull) and outcome[1]:
                    self._lifecycle.created(outcome[0])
        elif operation == "create_task" and result[1]:
            self._lifecycle.created(result[0])
        elif operation == "fail_task" or (operation == "update_task" and "status" in fields):
            self._lifecycle.status_set(result)

    def __del__(self) -> None:
        # Serve drops the replica object on shutdown: checkpoint the WAL and let go of the file.
        pruner: Pruner | None = getattr(self, "_pruner", None)
        if pruner is not None:
            pruner.stop()
        store: Store | None = getattr(self, "_store", None)
        if store is not None:
            store.close()
