"""Task listing and live progress: `GET /api/tasks` and `GET /api/task/{id}/events` (SSE).

The event stream polls the Store (the source of truth) rather than subscribing to the
workers: any Gateway replica can serve it, and a restarted worker changes nothing.
`task_events` is shared with the token-less view page (serve_app/pages.py).
"""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from actors.domain.task import TaskError, TaskRecord, TaskStatus
from actors.domain.video import TranscriptSource
from actors.storage.client import StoreClient
from serve_app.http.auth import authorize, client_of, own_task
from serve_app.http.context import edge_of
from serve_app.http.errors import ApiError, task_or_404

log = logging.getLogger(__name__)

POLL_S = 0.5  # how often a stream looks at the Store
HEARTBEAT_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
MAX_STREAM_S = 30 * 60.0  # then the stream ends; EventSource reconnects by itself
RETRY_MS = 3000  # the reconnection delay the browser should use
MAX_STREAMS = 100  # open streams per Gateway replica (which takes 200 requests at once)

router = APIRouter()

# -- GET /api/tasks ----------------------------------------------------------------------


class TaskItem(BaseModel):
    """One row of the task list: what a history page shows, without the texts."""

    task_id: str
    status: TaskStatus
    progress: dict[str, Any]
    url: str
    client: str | None
    title: str | None
    platform: str | None
    duration: float | None
    source: TranscriptSource | None
    cached: bool
    error: TaskError | None
    view_url: str
    created_at: float
    updated_at: float


class TaskList(BaseModel):
    """A page of tasks, newest first; `next_offset` is None on the last page."""

    tasks: list[TaskItem]
    limit: int
    offset: int
    next_offset: int | None


def progress_of(task: TaskRecord) -> dict[str, Any]:
    """The `progress` object of the API: stage, fraction within it, and the stage's details."""
    return {"stage": task.status.value, "fraction": task.progress, **task.progress_detail}


@router.get("/api/tasks", response_model=TaskList, dependencies=[Depends(authorize)])
async def list_tasks(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: TaskStatus | None = None,
    q: Annotated[str | None, Query(max_length=200, description="substring of the URL or title, or a task id")] = None,
) -> TaskList:
    """List tasks newest first, filtered by status and a search text. A client's token
    lists that client's tasks only; a plain API token lists every task."""
    store = edge_of(request).store
    client = client_of(request)  # set by `authorize`
    # One extra row tells whether a next page exists without a COUNT query.
    found: list[TaskRecord] = await store.list_tasks(
        limit=limit + 1, offset=offset, status=status, client=client, query=(q or "").strip() or None
    )
    base = str(request.base_url).rstrip("/")
    items = [_item(task, base) for task in found[:limit]]
    return TaskList(tasks=items, limit=limit, offset=offset, next_offset=offset + limit if len(found) > limit else None)


def _item(task: TaskRecord, base: str) -> TaskItem:
    video = task.video
    return TaskItem(
        task_id=task.task_id,
        status=task.status,
        progress=progress_of(task),
        url=task.url,
        client=task.client,
        title=video.title if video else None,
        platform=video.platform if video else None,
        duration=video.duration if video else None,
        source=task.source,
        cached=task.cached,
        error=task.error,
        view_url=f"{base}/view/{task.task_id}",
        created_at=task.created_at,
        updated_at=task.updated_at,
    )


# -- GET /api/task/{id}/events -----------------------------------------------------------


def snapshot(task: TaskRecord) -> dict[str, Any]:
    """What one event carries: small, and free of texts and secrets."""
    return {
        "task_id": task.task_id,
        "status": task.status.value,
        "progress": progress_of(task),
        "source": task.source.value if task.source else None,
        "delivery": {
            "state": task.delivery.state,
            "sent": task.delivery.parts_sent,
            "total": task.delivery.parts_total,
        },
        "error": task.error.model_dump() if task.error else None,
        "updated_at": task.updated_at,
    }


def _event(kind: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def task_events(
    store: StoreClient,
    task_id: str,
    *,
    poll_s: float | None = None,
    heartbeat_s: float | None = None,
    max_s: float | None = None,
) -> AsyncIterator[bytes]:
    """Server-sent events for one task: `stage` when the status changes, `progress`
    when only the progress does, then `end` once it is finished.

    Each poll asks for the task's state (no texts) only if it changed since the last one
    seen: a viewer costs the Store a few bytes per poll, not the whole record."""
    # The module's values are read now, not at import: tests shorten them.
    poll_s = POLL_S if poll_s is None else poll_s
    heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
    max_s = MAX_STREAM_S if max_s is None else max_s
    yield f"retry: {RETRY_MS}\n\n".encode()
    started = last_sent = time.monotonic()
    last: dict[str, Any] | None = None
    seen: float | None = None  # updated_at of the state last read
    count = 0
    while time.monotonic() - started < max_s:
        task = None
        try:
            task = await store.task_state(task_id, since=seen)
        except Exception:  # a Store hiccup: keep the stream, try again at the next poll
            log.warning("event stream of task %s: store read failed", task_id, exc_info=True)
        if task is not None:
            seen = task.updated_at
            current = snapshot(task)
            changed = last is None or {**current, "updated_at": 0} != {**last, "updated_at": 0}
            if changed:
                kind = "stage" if last is None or last["status"] != current["status"] else "progress"
                count += 1
                yield _event(kind, current, count)
                last, last_sent = current, time.monotonic()
            if task.status.finished:
                yield _event("end", current, count + 1)
                return
        if time.monotonic() - last_sent >= heartbeat_s:
            yield b": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(poll_s)


class _OpenStreams:
    """How many event streams this replica is serving now."""

    count = 0


async def _counted(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # Counted while iterated: a response never started (client gone) never holds a slot.
    _OpenStreams.count += 1
    try:
        async for chunk in events:
            yield chunk
    finally:
        _OpenStreams.count -= 1


async def stream_task(store: StoreClient, task_id: str) -> StreamingResponse:
    """The task's event stream as a text/event-stream response that proxies do not buffer.

    404 for an unknown task (a JSON answer, not an empty stream); 429 past MAX_STREAMS,
    so long-lived streams never take the slots submissions need (pages then poll)."""
    if _OpenStreams.count >= MAX_STREAMS:
        raise ApiError(429, "too_many_streams", "too many live streams; poll the task instead", {"Retry-After": "30"})
    await task_or_404(store, task_id)
    headers = {"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_counted(task_events(store, task_id)), media_type="text/event-stream", headers=headers)


@router.get("/api/task/{task_id}/events", dependencies=[Depends(authorize)])
async def task_event_stream(task_id: str, request: Request) -> StreamingResponse:
    """Live stage and progress changes of one task, as server-sent events."""
    await own_task(request, task_id)
    return await stream_task(edge_of(request).store, task_id)
