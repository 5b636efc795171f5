"""How fast to call the LLM server: one shared limit on requests in flight, and backoff.

The limit covers every video, because one server has one queue: a request waits here
for a slot (not at the server, where the wait would count against its deadline). HTTP
429s and timeouts halve the limit; each `recover_s` without one raises it by one, back
to the configured ceiling. A Retry-After holds every new request, not just the one
that got it: the server said it is busy.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque


class AdaptiveLimit:
    """At most `limit` requests at once between `acquire()` and `release()`; `limit` moves
    between 1 and `ceiling`. Waiters are woken in arrival order."""

    def __init__(self, ceiling: int, recover_s: float) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self._recover_s = recover_s
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._hold_until = 0.0
        self._calm_since = time.monotonic()

    @property
    def in_use(self) -> int:
        return self._in_use

    async def acquire(self) -> None:
        """Take a slot; waits while the limit is reached or a hold lasts."""
        while True:
            self._recover()
            held = self._hold_until - time.monotonic()
            if held <= 0 and self._in_use < self.limit:
                self._in_use += 1
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                # A hold ends by the clock, not by a release: wake up for it.
                async with asyncio.timeout(held if held > 0 else None):
                    await waiter
            except TimeoutError:
                pass
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # the slot we were woken for goes to the next waiter
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self) -> None:
        self._in_use -= 1
        self._wake()

    def overloaded(self) -> None:
        """The server refused (429) or did not answer in time: fewer requests at once."""
        self.limit = max(1, self.limit // 2)
        self._calm_since = time.monotonic()

    def hold(self, seconds: float) -> None:
        """Start no request for `seconds` (the server's Retry-After)."""
        self._hold_until = max(self._hold_until, time.monotonic() + seconds)

    def _wake(self) -> None:
        free = self.limit - self._in_use
        for waiter in list(self._waiters):
            if free <= 0:
                break
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def _recover(self) -> None:
        now = time.monotonic()
        while self.limit < self.ceiling and now - self._calm_since >= self._recover_s:
            self.limit += 1
            self._calm_since += self._recover_s


def backoff(retry: int, base_s: float, max_s: float, retry_after: float | None = None) -> float:
    """Seconds before retry number `retry` (1, 2, ...): doubling from `base_s` with a little
    jitter, at least the server's Retry-After, at most `max_s`."""
    delay = base_s * 2 ** (retry - 1) * random.uniform(1.0, 1.25)  # jitter: retries of a burst spread out
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, max_s)
