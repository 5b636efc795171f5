"""Pytest plugin: the Gateway's FastAPI app on uvicorn in this process, without Ray.

The routers that need only the Store (task list, event streams, the pages and the
token-less view endpoints) run for real over HTTP against a real SQLite Store, which a
test fills and advances directly. The Gateway class's own routes (submit, task) need
Serve and are not reachable here; use `service_factory` for those.

    def test_x(local_gateway):
        task, _ = local_gateway.store.create_task("https://v.example/1", TaskOptions())
        httpx.get(f"{local_gateway.base_url}/api/tasks", headers=local_gateway.auth)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from actors.storage.store import Store
from actors.store import LocalStoreClient
from tests.support.service import TOKEN, free_port


@dataclass
class LocalGateway:
    """The running app and the Store behind it."""

    base_url: str
    store: Store
    token: str = TOKEN

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
def local_gateway_server() -> Iterator[tuple[str, Any]]:
    """uvicorn serving the Gateway's app on 127.0.0.1 for the session: (base URL, app)."""
    from serve_app.gateway import app  # importing the gateway includes every router

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="local-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the local gateway did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def local_gateway(local_gateway_server: tuple[str, Any], tmp_path: Path) -> Iterator[LocalGateway]:
    """The session's local app with a fresh Store for this test."""
    base_url, app = local_gateway_server
    store = Store(tmp_path / "vidscribe.db")
    app.state.store = LocalStoreClient(store)
    app.state.identities = [(TOKEN, None)]
    yield LocalGateway(base_url, store)
    app.state.store = None
    store.close()
