"""Durability: kill the whole Ray instance while tasks are in flight, start the service
again with `vidscribe serve`, and every task finishes with its block delivered whole."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.service import TOKEN, Service, app_settings, free_port
from tests.support.video_site import SPEECH_EN_AUDIO
from tests.support.wecom_receiver import assert_contiguous_blocks

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: dict[str, Any], prefix: str = "VIDSCRIBE_") -> dict[str, str]:
    """Flatten settings into VIDSCRIBE_* variables (`__` for nesting)."""
    env: dict[str, str] = {}
    for key, value in settings.items():
        name = f"{prefix}{key.upper()}"
        if isinstance(value, dict):
            env.update(settings_env(value, f"{name}__"))
        elif isinstance(value, list):
            env[name] = ",".join(str(v) for v in value)
        elif value is not None:
            env[name] = str(value)
    return env


class ServeProcess:
    """`vidscribe serve` in its own process group, on its own local Ray instance."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.port, self.env, self.log = port, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "serve_app.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--num-cpus",
                    "3",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = Service(f"http://127.0.0.1:{self.port}", TOKEN, Path(self.env["VIDSCRIBE_DATA_DIR"]))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{service.base_url}/healthz", timeout=2).status_code == 200:
                    return service
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError("vidscribe serve did not become healthy:\n" + self.log.read_text()[-3000:])

    def kill(self) -> None:
        """SIGKILL the CLI and every Ray process it started (GCS, raylet, workers)."""
        if self.process is None:
            return
        pids = _session_pids(self.process.pid)
        os.killpg(self.process.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


def _session_pids(root: int) -> list[int]:
    """Every descendant of `root` (Ray workers may leave the process group)."""
    import psutil

    try:
        return [child.pid for child in psutil.Process(root).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.fixture
def serve_process(
    tmp_path: Path, video_site: Any, fake_llm: Any, wecom: Any, link_default_model: Any
) -> Iterator[ServeProcess]:
    wecom.window_s = 2
    settings = app_settings(link_default_model(tmp_path / "data"), video_site, fake_llm, wecom)
    env = {**os.environ, **settings_env(settings), "RAY_ADDRESS": "local", "PYTHONPATH": str(ROOT)}
    server = ServeProcess(env, free_port(), tmp_path / "serve.log")
    yield server
    server.stop()


def test_kill_whole_ray_instance_then_restart(
    serve_process: ServeProcess, video_site: Any, fake_llm: Any, wecom: Any
) -> None:
    fake_llm.latency = (0.5, 1.0)  # keep tasks in the LLM stages long enough to be caught there too
    names = [f"crash-{index}-{uuid.uuid4().hex[:6]}" for index in range(4)]
    pages = [video_site.add_video(name, SPEECH_EN_AUDIO, title=f"Crash {name}", throttle_bps=40_000) for name in names]
    service = serve_process.start()
    task_ids = [service.submit(page).json()["task_id"] for page in pages]

    deadline = time.monotonic() + 120  # kill once work is really in flight
    while time.monotonic() < deadline:
        statuses = [service.task(task_id)["status"] for task_id in task_ids]
        if any(s in ("downloading", "transcribing", "proofreading", "delivering") for s in statuses):
            break
        time.sleep(0.2)
    serve_process.kill()
    before = dict(zip(task_ids, statuses, strict=True))
    assert not all(s == "done" for s in before.values()), "everything finished before the kill"

    service = serve_process.start()
    views = service.wait_finished(task_ids, timeout=300)
    assert {v["status"] for v in views.values()} == {"done"}, {k: (v["status"], v["error"]) for k, v in views.items()}
    titles = [v["video"]["title"] for v in views.values()]
    messages = wecom.messages("group-a")
    repeats = len(messages) - len({m.content for m in messages})
    assert repeats <= 1, "only a part in flight at the kill may arrive twice"
    kept = [m for i, m in enumerate(messages) if i == 0 or m.content != messages[i - 1].content]
    assert_contiguous_blocks(kept, expected_titles=titles)
