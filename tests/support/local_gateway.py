"""Pytest plugin: the Gateway's FastAPI app (`create_app`) on uvicorn in this process, without Ray.

Every route runs for real over HTTP against a real SQLite Store, which a test fills and
advances directly; accepted work goes to a `RecordingWorkQueue` instead of the
Transcriber pool. uvicorn starts once per session and serves each test's own app.

    def test_x(local_gateway):
        task, _ = local_gateway.store.create_task("https://v.example/1", TaskOptions())
        httpx.get(f"{local_gateway.base_url}/api/tasks", headers=local_gateway.auth)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from actors.storage.client import LocalStoreClient
from actors.storage.store import Store
from serve_app.http.app import create_app
from serve_app.settings import Settings
from tests.support.service import TOKEN, free_port


@dataclass
class RecordingWorkQueue:
    """A WorkQueue that records what the app handed on."""

    dispatched: int = 0
    announced: list[str] = field(default_factory=list)

    def dispatch(self) -> None:
        self.dispatched += 1

    def announce(self, task_id: str) -> None:
        self.announced.append(task_id)


class _CurrentApp:
    """The ASGI app uvicorn serves: whichever app the running test installed."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no test app installed"
        await self.app(scope, receive, send)


@dataclass
class LocalGateway:
    """The running app, the Store behind it and the work it accepted."""

    base_url: str
    store: Store
    work: RecordingWorkQueue
    install: Callable[..., None]  # install(**settings): a fresh app with these settings, same Store
    token: str = TOKEN

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
def local_gateway_server() -> Iterator[tuple[str, _CurrentApp]]:
    """uvicorn serving the current test's app on 127.0.0.1 for the session: (base URL, switch)."""
    current = _CurrentApp()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(current, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="local-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the local gateway did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", current
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def local_gateway(local_gateway_server: tuple[str, _CurrentApp], tmp_path: Path) -> Iterator[LocalGateway]:
    """A fresh app over a fresh Store for this test (no re-dispatch sweep: lifespan is off)."""
    base_url, current = local_gateway_server
    store = Store(tmp_path / "vidscribe.db")
    work = RecordingWorkQueue()

    def install(**overrides: Any) -> None:
        settings = Settings(api_tokens=[TOKEN], data_dir=tmp_path, **overrides)
        current.app = create_app(settings, LocalStoreClient(store), work)

    install()
    yield LocalGateway(base_url, store, work, install)
    current.app = None
    store.close()
