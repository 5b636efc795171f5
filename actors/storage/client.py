"""The Store as the other parts see it: async and typed, whichever process it lives in.

`StoreClient` declares every Store operation once, with its types, so mypy checks each
call; how a call reaches the Store is the subclass's one method, `_call`:
`LocalStoreClient` runs it in a thread of this process (CLI, tests), and
`HandleStoreClient` sends it to the Store deployment (actors/store.py) through a Serve
deployment handle. Its methods keep the
Store's signatures exactly (a unit test compares them).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from typing import Any

from actors.domain.outbox import OutboxBlock
from actors.domain.task import Submission, TaskOptions, TaskRecord, TaskStatus
from actors.storage.store import CancelOutcome, Store
from actors.storage.tasks import QueueFull


class StoreClient(ABC):
    """`await store.get_task(task_id)`: the Store's operations, awaited."""

    @abstractmethod
    async def _call(self, operation: str, /, *args: Any, **kwargs: Any) -> Any:
        """Run `Store.<operation>(*args, **kwargs)` and return its result."""

    # -- tasks
    async def create_task(
        self,
        url: str,
        options: TaskOptions,
        *,
        client: str | None = None,
        webhook: str | None = None,
        max_unfinished: int | None = None,
    ) -> tuple[TaskRecord, bool]:
        return await self._call(
            "create_task", url, options, client=client, webhook=webhook, max_unfinished=max_unfinished
        )

    async def create_tasks(
        self, submissions: Sequence[Submission], max_unfinished: int | None = None
    ) -> list[tuple[TaskRecord, bool] | QueueFull]:
        return await self._call("create_tasks", submissions, max_unfinished)

    async def get_task(self, task_id: str) -> TaskRecord | None:
        return await self._call("get_task", task_id)

    async def task_state(self, task_id: str, since: float | None = None) -> TaskRecord | None:
        return await self._call("task_state", task_id, since)

    async def update_task(self, task_id: str, /, **fields: Any) -> TaskRecord:
        return await self._call("update_task", task_id, **fields)

    async def add_warning(self, task_id: str, warning: str) -> None:
        await self._call("add_warning", task_id, warning)

    async def fail_task(self, task_id: str, code: str, message: str) -> TaskRecord:
        return await self._call("fail_task", task_id, code, message)

    async def unfinished_tasks(self, statuses: Collection[TaskStatus] | None = None) -> list[TaskRecord]:
        return await self._call("unfinished_tasks", statuses)

    async def count_unfinished(self) -> int:
        return await self._call("count_unfinished")

    async def list_tasks(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        status: TaskStatus | None = None,
        client: str | None = None,
        query: str | None = None,
    ) -> list[TaskRecord]:
        return await self._call("list_tasks", limit=limit, offset=offset, status=status, client=client, query=query)

    # -- leases
    async def claim_task(self, task_id: str, owner: str, lease_s: float) -> TaskRecord | None:
        return await self._call("claim_task", task_id, owner, lease_s)

    async def claim_next(self, owner: str, lease_s: float, statuses: Collection[TaskStatus]) -> TaskRecord | None:
        return await self._call("claim_next", owner, lease_s, statuses)

    async def renew_lease(self, task_id: str, owner: str, lease_s: float) -> bool:
        return await self._call("renew_lease", task_id, owner, lease_s)

    async def release_task(self, task_id: str, owner: str) -> None:
        await self._call("release_task", task_id, owner)

    async def stale_tasks(self, statuses: Collection[TaskStatus], idle_s: float) -> list[TaskRecord]:
        return await self._call("stale_tasks", statuses, idle_s)

    # -- cache layers
    async def cache_get(self, platform: str, video_id: str, layer: str) -> Any | None:
        return await self._call("cache_get", platform, video_id, layer)

    async def cache_put(self, platform: str, video_id: str, layer: str, value: Any) -> None:
        await self._call("cache_put", platform, video_id, layer, value)

    async def remember_alias(self, url: str, platform: str, video_id: str) -> None:
        await self._call("remember_alias", url, platform, video_id)

    async def cached_video(self, url: str) -> tuple[str, str] | None:
        return await self._call("cached_video", url)

    # -- outbox
    async def add_block(self, task_id: str, lane: str, key: str, parts: list[tuple[str, str]]) -> int:
        return await self._call("add_block", task_id, lane, key, parts)

    async def next_block(self, lane: str) -> OutboxBlock | None:
        return await self._call("next_block", lane)

    async def mark_part_sent(self, block_id: int, seq: int) -> None:
        await self._call("mark_part_sent", block_id, seq)

    async def abandon_block(self, block_id: int, errcode: int | None, message: str) -> None:
        await self._call("abandon_block", block_id, errcode, message)

    async def lanes_with_pending(self) -> list[str]:
        return await self._call("lanes_with_pending")

    async def block_progress(self, block_id: int) -> tuple[int, int]:
        return await self._call("block_progress", block_id)

    async def find_block(self, task_id: str, key: str) -> tuple[int, int, int] | None:
        return await self._call("find_block", task_id, key)

    async def task_blocks(self, task_id: str) -> list[OutboxBlock]:
        return await self._call("task_blocks", task_id)

    async def redeliver(self, task_id: str) -> bool:
        return await self._call("redeliver", task_id)

    async def cancel(self, task_id: str) -> CancelOutcome:
        return await self._call("cancel", task_id)

    async def retry(self, task_id: str) -> bool:
        return await self._call("retry", task_id)

    # -- health
    async def ping(self) -> bool:
        return await self._call("ping")


# The operations a client may ask for: the Store's public methods, less closing the file.
OPERATIONS = frozenset(name for name in vars(StoreClient) if not name.startswith("_"))


def run_operation(store: Store, operation: str, /, *args: Any, **kwargs: Any) -> Any:
    """`store.<operation>(...)` for an operation of `OPERATIONS`; anything else is refused."""
    if operation not in OPERATIONS:
        raise AttributeError(f"the Store has no operation {operation!r}")
    return getattr(store, operation)(*args, **kwargs)


class LocalStoreClient(StoreClient):
    """The Store of this process, each call in a worker thread (the event loop never blocks on SQLite)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def _call(self, operation: str, /, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(run_operation, self._store, operation, *args, **kwargs)


class HandleStoreClient(StoreClient):
    """The Store deployment, called through its Serve handle (its one method, `call`)."""

    def __init__(self, handle: Any) -> None:  # a ray.serve DeploymentHandle (no Ray import here)
        self._handle = handle

    async def _call(self, operation: str, /, *args: Any, **kwargs: Any) -> Any:
        return await self._handle.call.remote(operation, *args, **kwargs)
