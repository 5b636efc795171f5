"""Patience with a site that answers 429 Too Many Requests: wait and ask again, a few times.

Plain module (no Ray); runs in the worker thread that does the yt-dlp call, so the waits
block only that call, while the task's lease is renewed by the event loop as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from actors.domain.errors import RateLimitedBySite
from actors.media.settings import COOKIES_ENV, PROXY_ENV

log = logging.getLogger(__name__)

T = TypeVar("T")


def with_site_retries(
    call: Callable[[], T], delays: Sequence[float], *, sleep: Callable[[float], None] = time.sleep
) -> T:
    """`call()`, again after each of `delays` seconds while it raises RateLimitedBySite; then that
    error, saying how long it was tried and what else may help."""
    for attempt, delay in enumerate(delays, start=1):
        try:
            return call()
        except RateLimitedBySite as e:
            log.warning("%s; retry %d of %d in %g s", e.message, attempt, len(delays), delay)
        sleep(delay)
    try:
        return call()
    except RateLimitedBySite as e:
        retries = f"{len(delays)} retr{'y' if len(delays) == 1 else 'ies'}"
        waited = f" after {retries} over {sum(delays):g} s" if delays else ""
        raise RateLimitedBySite(
            f"{e.message}; still refused{waited}. Try again later; a logged-in session ({COOKIES_ENV}) or "
            f"another route ({PROXY_ENV}) often lifts the limit"
        ) from e
