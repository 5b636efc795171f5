"""Group commit: concurrent callers share one batched call.

Under a burst of submissions the Gateway would make one Store round trip (and one
disk sync) per request, and each round trip costs far more than the write itself.
Here the first caller's item goes out at once; items that arrive while that call is
in flight wait for it and then leave together as the next batch. An idle service
sees no extra delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """`await commit(item)` -> that item's result from `write(batch)`, batches of <= `max_batch`."""

    def __init__(self, write: Callable[[list[Item]], Awaitable[Sequence[Result]]], max_batch: int = 256) -> None:
        self._write = write
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        result: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, result))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="group-commit")
        # A caller that gives up (client gone) does not cancel the batch it is part of.
        return await asyncio.shield(result)

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            try:
                results = await self._write([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch of {len(batch)} got {len(results)} results")
            except Exception as error:  # the whole batch failed: each caller sees why
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), outcome in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(outcome)
