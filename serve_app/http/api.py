"""The JSON API's core routes: health, submit a link, read a task, download its transcript."""

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from serve_app.http.auth import authorize, client_of, own_task
from serve_app.http.context import edge_of
from serve_app.http.errors import ApiError, task_or_404
from serve_app.http.exports import ExportFormat, export_response
from serve_app.http.schemas import SubmitRequest, SubmitResponse, TaskView

# No `from __future__ import annotations` here: FastAPI reads these signatures at runtime.

router = APIRouter()


@router.get("/healthz", response_class=PlainTextResponse)
async def healthz(request: Request, details: bool = False) -> Response:
    """200 while the Store answers; `?details=true`: JSON with the smart robot's connection
    (`{"state", "reason"}`, null when it is not configured), which never makes it fail."""
    edge = edge_of(request)
    await edge.store.ping()
    if not details:
        return PlainTextResponse("ok")
    return JSONResponse({"store": "ok", "wecom_bot": await edge.robot_status()})


@router.post("/api/transcribe", status_code=202, response_model=SubmitResponse, dependencies=[Depends(authorize)])
async def submit(body: SubmitRequest, request: Request) -> SubmitResponse:
    """Accept a video link (or return its task if it is still running); with
    options.playlist_items, one task per item (`task_ids`, in item order)."""
    accepted = await edge_of(request).submitter.submit(body, client_of(request))
    task = accepted[0][0]
    base = str(request.base_url).rstrip("/")
    return SubmitResponse(
        task_id=task.task_id,
        status=task.status,
        status_url=f"{base}/api/task/{task.task_id}",
        view_url=f"{base}/view/{task.task_id}",
        cached=task.cached,
        task_ids=[item.task_id for item, _ in accepted],
    )


@router.get("/api/task/{task_id}", response_model=TaskView, dependencies=[Depends(authorize)])
async def task(task_id: str, request: Request) -> TaskView:
    """The task: status, progress, video, texts, warnings, error, delivery, tokens used."""
    return TaskView.of(await own_task(request, task_id))


@router.delete("/api/task/{task_id}", response_model=TaskView, dependencies=[Depends(authorize)])
async def cancel(task_id: str, request: Request) -> TaskView:
    """Cancel a waiting or running task: its worker stops at its next step and nothing more is
    sent for it. 409 when it is finished, or when its block is part-way out (it finishes whole)."""
    await own_task(request, task_id)
    store = edge_of(request).store
    outcome = await store.cancel(task_id)
    if outcome == "finished":
        raise ApiError(409, "already_finished", "the task is finished: nothing to cancel")
    if outcome == "sending":
        raise ApiError(409, "being_delivered", "the task's messages are being sent; they finish whole")
    return TaskView.of(await task_or_404(store, task_id))


@router.post("/api/task/{task_id}/retry", status_code=202, response_model=TaskView, dependencies=[Depends(authorize)])
async def retry(task_id: str, request: Request) -> TaskView:
    """Run a failed or cancelled task again from its first missing step (stored and cached
    results are reused); 409 for any other status."""
    await own_task(request, task_id)
    edge = edge_of(request)
    if not await edge.submitter.retry(task_id):
        raise ApiError(409, "not_retryable", "only a failed or cancelled task can be retried")
    return TaskView.of(await task_or_404(edge.store, task_id))


@router.post(
    "/api/task/{task_id}/redeliver", status_code=202, response_model=TaskView, dependencies=[Depends(authorize)]
)
async def redeliver(task_id: str, request: Request) -> TaskView:
    """Send the task's content block to its group again, whole (after a parked delivery, or a
    group that lost it); 409 while it has none yet or is sending it."""
    await own_task(request, task_id)
    store = edge_of(request).store
    if not await store.redeliver(task_id):
        raise ApiError(409, "nothing_to_redeliver", "the task has no finished delivery to send again")
    return TaskView.of(await task_or_404(store, task_id))


@router.get("/api/task/{task_id}/transcript", dependencies=[Depends(authorize)])
async def transcript(task_id: str, request: Request, format: ExportFormat = "txt") -> Response:
    """The transcript as txt, srt, vtt or json, or the whole result as Markdown (md)."""
    return export_response(await own_task(request, task_id), format)
