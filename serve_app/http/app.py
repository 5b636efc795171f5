"""The FastAPI app of the Gateway, built by `create_app` from its settings, a Store client and
the queue that takes accepted work; no module-level app, nothing attached at import."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from actors.storage.client import StoreClient
from serve_app.http import api, listing, pages
from serve_app.http.auth import identities_of
from serve_app.http.body_limit import BodyLimit
from serve_app.http.context import Edge, RobotStatus
from serve_app.http.errors import install_error_handlers
from serve_app.http.redispatch import redispatch_forever
from serve_app.http.schemas import ErrorResponse
from serve_app.http.submit import Submitter, WorkQueue
from serve_app.settings import Settings


def create_app(
    settings: Settings,
    store: StoreClient,
    work: WorkQueue,
    *,
    redispatch: bool = True,
    robot_status: RobotStatus | None = None,
) -> FastAPI:
    """The HTTP API and pages; with `redispatch`, the app's lifespan runs the re-dispatch sweep;
    `robot_status` reports the smart robot's connection (/healthz?details=true)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(redispatch_forever(store, work, settings.recovery)) if redispatch else None
        yield
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    app = FastAPI(
        title="vidscribe",
        summary="Video link -> transcript -> proofread + summary -> WeCom group",
        responses={401: {"model": ErrorResponse}},
        lifespan=lifespan,
    )
    app.state.edge = Edge(
        settings=settings,
        store=store,
        submitter=Submitter(settings, store, work),
        identities=identities_of(settings),
    )
    if robot_status is not None:
        app.state.edge.robot_status = robot_status
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(api.router)  # /healthz, submit, task, transcript
    app.include_router(listing.router)  # GET /api/tasks, /api/task/{id}/events
    app.include_router(pages.router)  # /, /history, /view/{id} and its data, /static
    return app
