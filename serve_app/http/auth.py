"""Bearer tokens and the per-token submission rate of the HTTP API.

The rate holds per Gateway replica: with N replicas a token may make up to N times the
configured rate. That is enough to stop one client from crowding out the others (the
global bound on work is the Store's queue, `max_queued_tasks`); a cluster-wide count
would cost a Store call on every request. Windows are keyed by a keyed hash of the
token, never the token itself, so neither a memory dump nor a log line reveals one.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from typing import Annotated

from fastapi import Header, Request

from actors.domain.task import TaskRecord
from actors.util.ratelimit import RateLimiter
from serve_app.http.context import Edge, edge_of
from serve_app.http.errors import ApiError, task_or_404
from serve_app.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A fresh salt per process: a key seen in a dump cannot be checked against guessed tokens.
_SALT = secrets.token_bytes(16)


def token_key(token: str) -> str:
    """The rate window key of a token: a salted BLAKE2b digest, not reversible."""
    return hashlib.blake2b(token.encode(), key=_SALT, digest_size=16).hexdigest()


def retry_after_header(wait_s: float) -> str:
    """Whole seconds for a Retry-After header, never 0 (a client would retry at once)."""
    return str(max(1, math.ceil(wait_s)))


def identify(presented: str, identities: list[tuple[str, str | None]]) -> tuple[bool, str | None]:
    """(token valid, client name or None) for a bearer token.

    Compares against every token without stopping early: timing reveals nothing."""
    matched, client = False, None
    for token, name in identities:
        if hmac.compare_digest(presented.encode(), token.encode()):
            matched, client = True, name
    return matched, client


def identities_of(settings: Settings) -> list[tuple[str, str | None]]:
    """Every accepted token with its client: VIDSCRIBE_API_TOKENS (no client) and VIDSCRIBE_CLIENTS__*."""
    plain: list[tuple[str, str | None]] = [(token.get_secret_value(), None) for token in settings.api_tokens]
    return plain + [(client.token.get_secret_value(), name) for name, client in settings.clients.items()]


async def authorize(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Require `Authorization: Bearer <token>` with one of the configured tokens, within its rate."""
    edge = edge_of(request)
    scheme, _, presented = (authorization or "").partition(" ")
    matched, client = identify(presented.strip(), edge.identities)
    if scheme.lower() != "bearer" or not presented.strip() or not matched:
        raise ApiError(401, "unauthorized", "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})
    request.state.client = client  # routes deliver to and list by this client
    # Only requests that create work count: reads are cheap Store lookups that clients poll.
    limiter = _rate_limiter(edge, client)
    if limiter is not None and request.method not in SAFE_METHODS:
        wait = limiter.hit(token_key(presented.strip()))
        if wait is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"more than {limiter.limit} submissions a minute with this token; retry later",
                {"Retry-After": retry_after_header(wait)},
            )


def client_of(request: Request) -> str | None:
    """The client `authorize` found for the request's token (None: a plain API token)."""
    return getattr(request.state, "client", None)


def _rate_limiter(edge: Edge, client: str | None) -> RateLimiter | None:
    """This replica's limiter for the client's rate (None: no limit), made on first use."""
    own = edge.settings.clients[client].rate_limit_per_minute if client is not None else None
    per_minute = own or edge.settings.rate_limit_per_minute
    if per_minute <= 0:
        return None
    limiter = edge.rate_limiters.get(per_minute)
    if limiter is None:  # routes run on one event loop: no other request gets in between
        limiter = edge.rate_limiters[per_minute] = RateLimiter(per_minute, 60.0)
    return limiter


async def own_task(request: Request, task_id: str) -> TaskRecord:
    """The task, or 404 when it does not exist or belongs to another client than the caller's
    (a plain API token is the operator's: it sees every task)."""
    found = await task_or_404(edge_of(request).store, task_id)
    caller = client_of(request)
    if caller is not None and found.client != caller:
        raise ApiError(404, "not_found", "no such task")
    return found
