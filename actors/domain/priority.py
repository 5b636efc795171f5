"""Priority with aging, shared by the Store's queues and the LLMSender's generation slots.

Every `AGING_S` seconds of waiting counts as one priority level, so a steady stream of
high-priority work delays low-priority work but never starves it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


AGING_S = 300.0
RANK = {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.LOW: 2}  # lower is more urgent


def rank_sql(column: str) -> str:
    """SQL for `RANK` of the priority name stored in `column`."""
    cases = " ".join(f"WHEN '{priority.value}' THEN {rank}" for priority, rank in RANK.items())
    return f"CASE {column} {cases} END"


def aged_rank_sql(rank_sql: str) -> str:
    """SQL for a row's urgency, lower first: its rank minus its waiting time in levels.
    Takes one query parameter, the current time; the row needs `created_at`."""
    return f"({rank_sql} - (? - created_at) / {AGING_S})"


class PriorityGate:
    """Like asyncio.Semaphore(n), but a freed slot goes to the most urgent waiter
    (rank aged by waiting time), not the first in line."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @asynccontextmanager
    async def slot(self, priority: Priority, since: float | None = None) -> AsyncIterator[None]:
        """Hold a slot; `since` (unix time the work arrived) makes older work more urgent."""
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            # The heap key is fixed at arrival: rank minus age, expressed as a time.
            key = (since or time.time()) + RANK[priority] * AGING_S
            entry = (key, next(self._order), future)
            heapq.heappush(self._waiting, entry)
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release()  # we were handed the slot just as we were cancelled
                else:
                    self._waiting.remove(entry)
                    heapq.heapify(self._waiting)
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)  # the slot passes straight to this waiter
                return
        self._free += 1
