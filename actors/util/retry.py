"""One home for the retry/backoff policy of the WeCom and LLM clients, built on tenacity.

Each client says which error is worth another try, how long to wait before it and what
to report; `retrying` does the counting and the waiting. Sleeps go through `asyncio.sleep`,
looked up at each wait, so tests that patch it still apply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

T = TypeVar("T")
E = TypeVar("E", bound=Exception)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    retry_on: type[E],
    delay_for: Callable[[int, E], float],
    on_retry: Callable[[int, E, float], None],
) -> T:
    """`attempt()` up to `attempts` times while it raises `retry_on`.

    Before each retry, `on_retry(attempt_number, error, delay)` runs and then the task
    sleeps `delay_for(attempt_number, error)` seconds (attempt numbers start at 1). Any
    other exception goes through at once; the last `retry_on` error is raised as it is.
    """

    def error(state: RetryCallState) -> E:
        assert state.outcome is not None
        return cast(E, state.outcome.exception())

    retryer = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        retry=retry_if_exception_type(retry_on),
        wait=lambda state: delay_for(state.attempt_number, error(state)),
        before_sleep=lambda state: on_retry(state.attempt_number, error(state), state.upcoming_sleep),
        sleep=_sleep,
        reraise=True,
    )
    return await retryer(attempt)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)  # looked up at each call: tests may patch asyncio.sleep
