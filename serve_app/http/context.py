"""What every route needs, built once by `create_app` and kept on the app (`app.state.edge`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from fastapi import FastAPI, Request

from actors.storage.client import StoreClient
from actors.util.ratelimit import RateLimiter
from serve_app.settings import Settings

if TYPE_CHECKING:
    from serve_app.http.submit import Submitter


RobotStatus = Callable[[], Awaitable[dict[str, str] | None]]  # the smart robot's connection, None: not configured


async def _no_robot() -> dict[str, str] | None:
    return None


@dataclass
class Edge:
    """The settings, the Store, the submit logic and the accepted tokens of this app."""

    settings: Settings
    store: StoreClient
    submitter: Submitter
    identities: list[tuple[str, str | None]]  # (token, client or None)
    rate_limiters: dict[int, RateLimiter] = field(default_factory=dict)  # by submissions per minute
    robot_status: RobotStatus = _no_robot


def edge_of(request: Request) -> Edge:
    """The app's `Edge`."""
    return edge_of_app(request.app)


def edge_of_app(app: FastAPI) -> Edge:
    """The `Edge` of an app made by `create_app`."""
    return cast(Edge, app.state.edge)
