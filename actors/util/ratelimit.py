"""One sliding-window rate limiter, used by the HTTP API (per token) and the WeCom client (per robot).

At most `limit` uses per key in any `window_s` seconds. Callers that must not wait ask
`hit()` (None = go ahead, else the seconds until a use is free: a Retry-After); callers
that may wait use `acquire()` or hold a `slot()` for one attempt. In-process: with N
processes each keeps its own window.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]

_IN_FLIGHT = float("inf")  # a slot in use never expires before it is settled
_MAX_IDLE_KEYS = 64  # past this many keys, windows with no recent use are forgotten


class RateLimiter:
    """A sliding window per key; thread-safe, and fair (first come, first served) for async waiters.

    The clock and sleep are injectable for unit tests.
    """

    def __init__(
        self, limit: int, window_s: float = 60.0, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._stamps: dict[str, list[float]] = {}
        self._lock = threading.Lock()  # FastAPI runs sync dependencies in a thread pool
        self._queues: dict[str, asyncio.Lock] = {}

    def hit(self, key: str) -> float | None:
        """Take a use now if one is free (None); else the seconds until one is, taking nothing.

        Refused hits are not recorded, so a caller that keeps retrying too early is not
        locked out for longer."""
        return self._take(key, None)

    async def acquire(self, key: str) -> None:
        """Wait until `key` has a free use and take it (stamped now)."""
        async with self._queue(key):
            while (wait := self._take(key, None)) is not None:
                await self._sleep(wait)

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        """Hold a use for one attempt; it counts from the moment the attempt ends, so the
        server's arrival time (always earlier) is inside the window reserved here."""
        async with self._queue(key):
            while (wait := self._take(key, _IN_FLIGHT)) is not None:
                await self._sleep(wait)
        try:
            yield
        finally:
            with self._lock:
                stamps = self._stamps[key]
                stamps[stamps.index(_IN_FLIGHT)] = self._clock()

    def hold(self, key: str, seconds: float) -> None:
        """No new use of `key` for `seconds` (the server said it is over its limit)."""
        with self._lock:
            now = self._clock()
            in_flight = [s for s in self._stamps.get(key, []) if s == _IN_FLIGHT]
            # Enough uses, stamped so that the first leaves the window in `seconds`.
            held = [now + seconds - self.window_s] * max(self.limit - len(in_flight), 1)
            self._stamps[key] = in_flight + held

    def _queue(self, key: str) -> asyncio.Lock:
        # One async waiter per key at a time: uses are handed out in arrival order.
        return self._queues.setdefault(key, asyncio.Lock())

    def _take(self, key: str, stamp: float | None) -> float | None:
        """Record a use stamped `stamp` (None: now) if the window has room; else the wait."""
        with self._lock:
            now = self._clock()
            stamps = [s for s in self._stamps.get(key, []) if s > now - self.window_s]
            self._stamps[key] = stamps
            if len(stamps) < self.limit:
                stamps.append(now if stamp is None else stamp)
                self._forget_idle(now)
                return None
            oldest = min(stamps)
            if oldest == _IN_FLIGHT:  # every use is in flight: look again soon (rare: sends are serial)
                return min(0.05, self.window_s / 10)
            return max(oldest + self.window_s - now, 0.001)

    def _forget_idle(self, now: float) -> None:
        if len(self._stamps) > _MAX_IDLE_KEYS:
            for key in [k for k, stamps in self._stamps.items() if all(s <= now - self.window_s for s in stamps)]:
                del self._stamps[key]
