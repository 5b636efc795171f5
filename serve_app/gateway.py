"""Gateway: the Serve ingress. Authenticates, validates, persists, dispatches, answers.

It never transcribes and never calls the LLM; every answer takes a couple of Store
calls, so it stays fast under any load. A full queue is a 429, never a hang.
"""


import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from ray import serve
from ray.serve.handle import DeploymentHandle

from actors.errors import VidscribeError
from actors.formats import TranscriptFormat, media_type, render
from actors.models import TaskOptions, TaskStatus
from actors.records import TaskRecord
from actors.store import StoreClient
from actors.urlguard import check_url
from serve_app.schemas import ErrorResponse, SubmitRequest, SubmitResponse, TaskView
from serve_app.settings import Settings

log = logging.getLogger(__name__)

PRE_LLM_STAGES = (TaskStatus.QUEUED, TaskStatus.RESOLVING, TaskStatus.DOWNLOADING, TaskStatus.TRANSCRIBING)
REDISPATCH_AFTER_S = 120.0  # a task with no live lease and no token for this long gets a new one
SWEEP_INTERVAL_S = 15.0
RETRY_AFTER_S = 30
DEFAULT_MAX_BODY = 16 * 1024

app = FastAPI(
    title="vidscribe",
    summary="Video link -> transcript -> proofread + summary -> WeCom group",
    responses={401: {"model": ErrorResponse}},
)


class ApiError(Exception):
    """An HTTP error with the API's error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, message, headers)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


@app.exception_handler(ApiError)
async def _api_error(request: Request, error: ApiError) -> JSONResponse:
    return error_response(error.status, error.code, error.message, error.headers)


@app.exception_handler(VidscribeError)
async def _domain_error(request: Request, error: VidscribeError) -> JSONResponse:
    status = error.http_status if 400 <= error.http_status < 500 else 400
    return error_response(status, error.code, error.message)


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}" for e in error.errors()
    )
    return error_response(422, "invalid_request", problems or "malformed request body")


@app.middleware("http")
async def limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Refuse bodies over `max_body_bytes` (413) before the route reads them."""
    limit = getattr(request.app.state, "max_body_bytes", DEFAULT_MAX_BODY)
    length = request.headers.get("content-length")
    too_large = length is not None and (not length.isdigit() or int(length) > limit)
    if length is None and request.method in ("POST", "PUT", "PATCH"):
        too_large = len(await request.body()) > limit  # chunked upload: measure what arrived
    if too_large:
        return error_response(413, "body_too_large", f"request body over {limit} bytes")
    return await call_next(request)


def _token_ok(presented: str, tokens: list[str]) -> bool:
    # Compare against every token without stopping early: timing reveals nothing.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented.encode(), token.encode())
    return matched


def authorize(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Require `Authorization: Bearer <token>` with one of the configured tokens."""
    scheme, _, presented = (authorization or "").partition(" ")
    tokens: list[str] = getattr(request.app.state, "tokens", [])
    if scheme.lower() != "bearer" or not presented.strip() or not _token_ok(presented.strip(), tokens):
        raise ApiError(401, "unauthorized", "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})


@serve.deployment(name="Gateway", max_ongoing_requests=200)
@serve.ingress(app)
class Gateway:
    """The HTTP API of DESIGN.md."""

    # No `from __future__ import annotations` in this module: Serve's ingress rebuilds
    # the route signatures and FastAPI must see real classes, not strings.

    async def __init__(self, settings: Settings, store: DeploymentHandle, transcriber: DeploymentHandle) -> None:  # type: ignore[misc]  # Serve awaits it
        self._settings = settings
        app.state.tokens = [t.get_secret_value() for t in settings.api_tokens]
        app.state.max_body_bytes = settings.max_body_bytes
        self._store = StoreClient(store)
        self._transcriber = transcriber
        self._sweeper = asyncio.create_task(self._sweep(), name="redispatch")

    # -- routes -----------------------------------------------------------------
    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz(self) -> str:
        await self._store.ping()
        return "ok"

    @app.post("/api/transcribe", status_code=202, response_model=SubmitResponse)
    async def submit(self, body: SubmitRequest, request: Request, _: None = Depends(authorize)) -> SubmitResponse:
        url = check_url(
            body.url.strip(),
            allow_private=self._settings.allow_private_urls,
            max_length=self._settings.max_url_length,
            resolve=False,  # DNS is checked by the worker; the gateway answers in milliseconds
        )
        if await self._store.count_unfinished() >= self._settings.max_queued_tasks:
            raise ApiError(
                429, "queue_full", "too many tasks waiting; retry later", {"Retry-After": str(RETRY_AFTER_S)}
            )
        options = TaskOptions.model_validate(body.options.model_dump())
        task, created = await self._store.create_task(url, options)
        if created:
            if await self._store.cached_video(url) is not None:
                task = await self._store.update_task(task.task_id, cached=True)
            self._dispatch()
        base = str(request.base_url).rstrip("/")
        return SubmitResponse(
            task_id=task.task_id,
            status=task.status,
            status_url=f"{base}/api/task/{task.task_id}",
            view_url=f"{base}/view/{task.task_id}",
            cached=task.cached,
        )

    @app.get("/api/task/{task_id}", response_model=TaskView)
    async def task(self, task_id: str, _: None = Depends(authorize)) -> TaskView:
        return TaskView.of(await self._get(task_id))

    @app.get("/api/task/{task_id}/transcript")
    async def transcript(
        self, task_id: str, format: TranscriptFormat = "txt", _: None = Depends(authorize)
    ) -> Response:
        task = await self._get(task_id)
        if task.transcript is None:
            raise ApiError(409, "not_ready", f"the transcript is not ready (status {task.status})")
        return Response(render(task.transcript, format), media_type=media_type(format))

    # -- internals --------------------------------------------------------------
    async def _get(self, task_id: str) -> TaskRecord:
        task = await self._store.get_task(task_id) if len(task_id) <= 64 else None
        if task is None:
            raise ApiError(404, "not_found", "no such task")
        return task

    def _dispatch(self) -> None:
        # Fire and forget: the token's fate is tracked in the Store, not here.
        self._transcriber.process.remote()

    async def _sweep(self) -> None:
        """Give a work token to every waiting task that nobody holds (restart, lost token, dead worker)."""
        first = True
        while True:
            try:
                stale = await self._store.stale_tasks(PRE_LLM_STAGES, 0.0 if first else REDISPATCH_AFTER_S)
                for _task in stale:
                    self._dispatch()
                if stale:
                    log.info("re-dispatched %d waiting tasks", len(stale))
                first = False
            except Exception:
                log.warning("re-dispatch sweep failed; retrying", exc_info=True)
            await asyncio.sleep(SWEEP_INTERVAL_S)
