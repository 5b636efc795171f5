"""Pytest plugin: the whole vidscribe app on a real local Ray instance, over real HTTP.

`service_factory(**settings_overrides)` deploys the app (Gateway, Store, LLMSender,
Transcriber pool) with the local video site, the fake LLM and the WeCom receiver, and
returns a `Service` client. The Ray instance is shared by the session; each test gets
a fresh app and data dir.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_app.cli.serve import DEFAULT_CONFIG, HEAD_RESOURCE, load_app_config

TOKEN = "test-token-0123456789"
FINISHED = {"done", "failed", "cancelled"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """A running app: HTTP client helpers bound to its base URL and token."""

    base_url: str
    token: str
    data_dir: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def submit(self, url: str, **options: Any) -> httpx.Response:
        body: dict[str, Any] = {"url": url}
        if options:
            body["options"] = options
        return httpx.post(f"{self.base_url}/api/transcribe", json=body, headers=self.auth, timeout=30)

    def task(self, task_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/api/task/{task_id}", headers=self.auth, timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def wait_finished(self, task_ids: list[str], timeout: float = 240) -> dict[str, dict[str, Any]]:
        """Poll until every task is done or failed; fail the test at the deadline."""
        deadline = time.monotonic() + timeout
        views: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            views = {task_id: self.task(task_id) for task_id in task_ids}
            if all(view["status"] in FINISHED for view in views.values()):
                return views
            time.sleep(0.5)
        states = {task_id: (v["status"], v["progress"]) for task_id, v in views.items()}
        raise AssertionError(f"tasks not finished after {timeout}s: {states}")


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[int]:
    """A local Ray instance for the session; yields the Serve HTTP port."""
    import ray
    from ray import serve

    ray.init(
        num_cpus=4,  # logical: one Transcriber replica per CPU, singletons take fractions
        resources={HEAD_RESOURCE: 1},
        include_dashboard=False,
        logging_level="WARNING",
    )
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()
    ray.shutdown()


def app_settings(data_dir: Path, site: Any, llm_server: Any, receiver: Any, /, **overrides: Any) -> dict[str, Any]:
    """Settings for a test app: everything local, windows short enough for tests; `overrides`
    replace top-level fields and merge into nested groups (llm, wecom, ...)."""
    del site  # pages are served by the video site; nothing in the settings points at it
    settings: dict[str, Any] = {
        "data_dir": str(data_dir),
        "allow_private_urls": True,
        "api_tokens": [TOKEN],
        "llm": {
            "base_url": llm_server.base_url,
            "api_key": "sk-test",
            "proofread_model": "fake-proofread",
            "summary_model": "fake-summary",
            "timeout_s": 10,
            "retry_base_s": 0.05,
        },
        "wecom": receiver.settings("group-a").model_dump() | {"webhook_url": receiver.webhook_url("group-a")},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    return settings


@pytest.fixture
def service_factory(
    ray_instance: int,
    tmp_path: Path,
    video_site: Any,
    fake_llm: Any,
    wecom: Any,
    link_default_model: Callable[[Path], Path],
) -> Iterator[Callable[..., Service]]:
    """Deploy the app with settings overrides; torn down after the test."""
    wecom.window_s = 2  # the real limit logic (20 per window), a shorter window
    from ray import serve

    from serve_app.app import APP_NAME, compose_app

    def start(deployment_options: dict[str, dict[str, Any]] | None = None, **overrides: Any) -> Service:
        data_dir = link_default_model(tmp_path / "data")
        _, options = load_app_config(DEFAULT_CONFIG)
        for name, extra in (deployment_options or {}).items():
            options[name] = {**options.get(name, {}), **extra}
        args = app_settings(data_dir, video_site, fake_llm, wecom, **overrides)
        serve.run(compose_app(args, options), name=APP_NAME, route_prefix="/")
        return Service(f"http://127.0.0.1:{ray_instance}", TOKEN, data_dir)

    yield start
    serve.delete(APP_NAME)


@pytest.fixture(scope="module")
def module_service_factory(
    ray_instance: int,
    tmp_path_factory: pytest.TempPathFactory,
    video_site: Any,
    fake_llm_server: Any,
    wecom_server: Any,
    asr_data_dir: Path,
) -> Iterator[Callable[..., Service]]:
    """`service_factory` for a whole test module (deploying costs ~15 s): each call
    replaces the app deployed before it, with a fresh data dir; torn down after the module.

    It uses the session's fake LLM and WeCom receiver as they are: do not ask for the
    function-scoped `fake_llm` / `wecom` fixtures in such a module (they reset the servers,
    and the receiver then forgets the app's robot key).
    """
    from ray import serve

    from serve_app.app import APP_NAME, compose_app

    wecom_server.window_s = 2  # the real limit logic (20 per window), a shorter window
    deployed = False

    def start(deployment_options: dict[str, dict[str, Any]] | None = None, **overrides: Any) -> Service:
        nonlocal deployed
        if deployed:
            serve.delete(APP_NAME)  # a fresh app, not an in-place update of the old one
        data_dir = tmp_path_factory.mktemp("service") / "data"
        data_dir.mkdir()
        (data_dir / "models").symlink_to(asr_data_dir / "models", target_is_directory=True)
        _, options = load_app_config(DEFAULT_CONFIG)
        for name, extra in (deployment_options or {}).items():
            options[name] = {**options.get(name, {}), **extra}
        args = app_settings(data_dir, video_site, fake_llm_server, wecom_server, **overrides)
        serve.run(compose_app(args, options), name=APP_NAME, route_prefix="/")
        deployed = True
        return Service(f"http://127.0.0.1:{ray_instance}", TOKEN, data_dir)

    yield start
    if deployed:
        serve.delete(APP_NAME)
