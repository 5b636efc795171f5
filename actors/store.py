"""Store deployment: the SQLite source of truth as a Ray Serve singleton.

Every other deployment talks to it through `StoreClient`, so the state lives in one
process and survives the restart of any other part.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from actors.metrics import TaskLifecycle
from actors.records import Submission, TaskRecord
from actors.store_db import QueueFull, Store
from serve_app.settings import Settings

STORE_FILE = "vidscribe.db"


# Calls are short SQLite statements run in Serve's thread pool; a high bound keeps a
# burst of submissions from queueing behind each other in the router.
@serve.deployment(name="Store", num_replicas=1, max_ongoing_requests=512)
class StoreDeployment(Store):
    """The singleton that owns the SQLite file; its methods are `Store`'s."""

    def __init__(self, settings: Settings) -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(settings.data_dir / STORE_FILE)
        self._lifecycle = TaskLifecycle(self.count_unfinished)  # metrics: every status change passes here

    def create_tasks(
        self, submissions: Sequence[Submission], max_unfinished: int | None = None
    ) -> list[tuple[TaskRecord, bool] | QueueFull]:
        results = super().create_tasks(submissions, max_unfinished)  # create_task comes here too
        for result in results:
            if not isinstance(result, QueueFull) and result[1]:
                self._lifecycle.created(result[0])
        return results

    def update_task(self, task_id: str, /, **fields: Any) -> TaskRecord:
        task = super().update_task(task_id, **fields)
        if "status" in fields:
            self._lifecycle.status_set(task)
        return task

    def ping(self) -> bool:
        return True

    def __del__(self) -> None:
        # Serve drops the replica object on shutdown: checkpoint the WAL and let go of the file.
        self.close()


class StoreClient:
    """Async view of the Store deployment: `await store.get_task(task_id)`."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self._handle = handle

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._handle, name)
        return lambda *args, **kwargs: method.remote(*args, **kwargs)


class LocalStoreClient:
    """The same async view over an in-process `Store` (CLI and tests without Ray)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._store, name)
        return lambda *args, **kwargs: asyncio.to_thread(method, *args, **kwargs)
