"""Per-token rate limit of the HTTP API: an in-process sliding window.

The limit holds per Gateway replica: with N replicas a token may make up to N times
the configured rate. That is enough to stop one client from crowding out the others
(the global bound on work is the Store's queue, `max_queued_tasks`); a cluster-wide
count would cost a Store call on every request.

Windows are keyed by a keyed hash of the token, never the token itself, so neither a
memory dump of this object nor a log line about it reveals a credential.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]

# A fresh salt per process: a key seen in a dump cannot be checked against guessed tokens.
_SALT = secrets.token_bytes(16)


def token_key(token: str) -> str:
    """The window key of a token: a salted BLAKE2b digest, not reversible."""
    return hashlib.blake2b(token.encode(), key=_SALT, digest_size=16).hexdigest()


class SlidingWindowLimiter:
    """At most `limit` hits per key in any `window_s` seconds; thread-safe.

    `hit(key)` records a hit and returns None when it is allowed, else the seconds until
    the oldest hit leaves the window (the Retry-After). Refused hits are not recorded,
    so a client that keeps retrying too early is not locked out for longer.
    """

    def __init__(self, limit: int, window_s: float = 60.0, *, clock: Clock = time.monotonic) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        # FastAPI runs sync dependencies (authorize) in a thread pool.
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Record a hit for `key`; None if allowed, else seconds to wait before the next one."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window_s - now, 0.0)
            hits.append(now)
            self._forget_idle(now)
            return None

    def _forget_idle(self, now: float) -> None:
        # Keys are valid tokens only (authorization comes first), so this stays small;
        # dropping idle windows keeps revoked tokens from lingering anyway.
        if len(self._hits) > 64:
            for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window_s]:
                del self._hits[key]


def retry_after_header(wait_s: float) -> str:
    """Whole seconds for a Retry-After header, never 0 (a client would retry at once)."""
    return str(max(1, math.ceil(wait_s)))
