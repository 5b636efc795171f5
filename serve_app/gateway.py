"""Gateway: the Serve ingress. Authenticates, validates, persists, dispatches, answers.

It never transcribes and never calls the LLM; every answer takes a couple of Store
calls, so it stays fast under any load. A full queue is a 429, never a hang.
"""

import asyncio
import logging

from fastapi import Depends, Request
from fastapi.responses import PlainTextResponse, Response
from ray import serve
from ray.serve.handle import DeploymentHandle

from actors.domain.task import PRE_LLM_STAGES, Submission, TaskOptions, TaskRecord
from actors.net.urlguard import check_url
from actors.storage.store import QueueFull
from actors.store import StoreClient
from serve_app.http import listing, pages
from serve_app.http.app import ApiError, app, authorize, identities_of
from serve_app.http.group_commit import GroupCommit
from serve_app.http.pages import ExportFormat, export_response
from serve_app.http.schemas import SubmitRequest, SubmitResponse, TaskView
from serve_app.settings import Settings

log = logging.getLogger(__name__)

RETRY_AFTER_S = 30

app.include_router(listing.router)  # GET /api/tasks, /api/task/{id}/events
app.include_router(pages.router)  # /, /history, /view/{id} and its data, /static


@serve.deployment(name="Gateway", max_ongoing_requests=200)
@serve.ingress(app)
class Gateway:
    """The HTTP API of DESIGN.md."""

    # No `from __future__ import annotations` in this module: Serve's ingress rebuilds
    # the route signatures and FastAPI must see real classes, not strings.

    async def __init__(  # type: ignore[misc]  # Serve awaits an async constructor
        self, settings: Settings, store: DeploymentHandle, transcriber: DeploymentHandle, sender: DeploymentHandle
    ) -> None:
        self._settings = settings
        self._store = StoreClient(store)
        self._create: GroupCommit[Submission, tuple[TaskRecord, bool] | QueueFull] = GroupCommit(
            lambda batch: self._store.create_tasks(batch, max_unfinished=settings.max_queued_tasks)
        )
        app.state.identities = identities_of(settings)
        app.state.max_body_bytes = settings.max_body_bytes
        app.state.store = self._store
        app.state.settings = settings
        self._transcriber = transcriber
        self._sender = sender
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
        client: str | None = getattr(request.state, "client", None)
        webhook = self._webhook_for(client, body.options.webhook_url)
        options = TaskOptions.model_validate(body.options.model_dump(exclude={"webhook_url"}))
        # Dedupe, bound the queue, create: one Store round trip shared with concurrent submissions.
        accepted = await self._create(Submission(url=url, options=options, client=client, webhook=webhook))
        if isinstance(accepted, QueueFull):
            raise ApiError(429, accepted.code, accepted.message, {"Retry-After": str(RETRY_AFTER_S)})
        task, created = accepted
        if created:
            self._dispatch()
            if self._settings.notices.accepted:
                self._sender.notify_accepted.remote(task.task_id)  # fire and forget: a notice, not work
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
    async def transcript(self, task_id: str, format: ExportFormat = "txt", _: None = Depends(authorize)) -> Response:
        return export_response(await self._get(task_id), format)

    # -- internals --------------------------------------------------------------
    async def _get(self, task_id: str) -> TaskRecord:
        task = await self._store.get_task(task_id) if len(task_id) <= 64 else None
        if task is None:
            raise ApiError(404, "not_found", "no such task")
        return task

    def _webhook_for(self, client: str | None, requested: str | None) -> str | None:
        """The task's WeCom lane: the request's own webhook (checked), else its client's, else
        None (the default group)."""
        wecom = self._settings.wecom
        if requested is not None:
            return check_url(
                requested,
                allow_private=wecom.allow_private_webhooks,
                allowed_hosts=wecom.allowed_webhook_hosts,
                resolve=False,  # the WeCom client checks the address it connects to
            )
        configured = self._settings.clients[client].webhook_url if client is not None else None
        return configured.get_secret_value() if configured is not None else None

    def _dispatch(self) -> None:
        # Fire and forget: the token's fate is tracked in the Store, not here.
        self._transcriber.process.remote()

    async def _sweep(self) -> None:
        """Give a work token to every waiting task that nobody holds (restart, lost token, dead worker)."""
        first = True
        while True:
            try:
                idle_s = 0.0 if first else self._settings.recovery.redispatch_after_s
                stale = await self._store.stale_tasks(PRE_LLM_STAGES, idle_s)
                for _task in stale:
                    self._dispatch()
                if stale:
                    log.info("re-dispatched %d waiting tasks", len(stale))
                first = False
            except Exception:
                log.warning("re-dispatch sweep failed; retrying", exc_info=True)
            await asyncio.sleep(self._settings.recovery.sweep_interval_s)
