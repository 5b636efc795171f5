"""A real two-node Ray cluster on this machine: `ray start --head`, a second `ray start
--address=...` as a worker node, `serve deploy` of ray_config.yaml. Transcribers run on
the worker node, the singletons on the head; the worker node dies in the middle of a
task, and the task is dispatched again and finishes once a worker node is back.

Everything Ray runs in process groups this test starts (`ray start --block`), with its
own temp dir and ports, so the session's Ray instance of other tests is never touched;
this process never joins the cluster (it talks to the dashboard's REST API, like the
`serve` and `ray` CLIs do).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from serve_app.cli.serve import DEFAULT_CONFIG, HEAD_RESOURCE
from tests.support.asr import HEARD_THE_CLIP
from tests.support.service import TOKEN, Service, app_settings
from tests.support.text import word_overlap
from tests.support.video_site import SPEECH_EN_AUDIO, SPEECH_EN_TEXT, SPEECH_EN_VTT
from tests.support.wecom_receiver import assert_contiguous_blocks

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKER_RESOURCE = "worker_node"
PRE_LLM = ("queued", "resolving", "downloading", "transcribing")


# Recovery clocks in seconds, not minutes (defaults: lease 60 s, redispatch after 120 s,
# sweep every 15 s): the same mechanism, a test that waits ~10 s instead of ~3 min.
FAST_RECOVERY = {"lease_s": 6.0, "redispatch_after_s": 3.0, "sweep_interval_s": 1.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RayNode:
    """One `ray start --block` in its own process group; `kill()` is a node crash."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.args, self.env, self.log = name, args, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        ports = [
            f"--{option}={free_port()}"
            for option in (
                "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port",
                "runtime-env-agent-port",
                "metrics-export-port",
            )
        ]
        # Worker ports 0: the OS picks them, so they never collide with another Ray on this machine.
        fixed = ["--min-worker-port=0", "--max-worker-port=0", "--disable-usage-stats", "--block"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "ray"), "start", *self.args, *ports, *fixed],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        assert self.process is not None and self.process.poll() is None, (
            f"ray start ({self.name}) exited:\n{self.log.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        """SIGKILL `ray start`, its raylet, agents and workers (workers start their own sessions)."""
        if self.process is None:
            return
        try:
            descendants = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for process in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self.process.wait()
        psutil.wait_procs(descendants, timeout=10)  # gone before the temp dir is removed
        self.process = None


class Cluster:
    """A head node and a worker node on this machine, reached through the dashboard's REST API."""

    def __init__(self, temp_dir: Path) -> None:
        self.temp_dir = temp_dir
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        # Token authentication is on for `ray start --head`; a second node joins only in token mode.
        self.env |= {"RAY_AUTH_MODE": "token", "PYTHONPATH": str(ROOT)}
        self.head = RayNode(
            "head",
            [
                "--head",
                f"--port={self.gcs_port}",
                f"--temp-dir={temp_dir}",
                "--num-cpus=1",
                f'--resources={{"{HEAD_RESOURCE}": 1}}',
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--ray-client-server-port={free_port()}",
            ],
            self.env,
            temp_dir / "head.log",
        )
        self.worker = self._worker_node()

    def _worker_node(self) -> RayNode:
        args = [f"--address=127.0.0.1:{self.gcs_port}", "--num-cpus=2", f'--resources={{"{WORKER_RESOURCE}": 2}}']
        return RayNode("worker", args, self.env, self.temp_dir / "worker.log")

    @property
    def headers(self) -> dict[str, str]:
        token_file = Path.home() / ".ray" / "auth_token"  # written by the head if it was missing
        return {"Authorization": f"Bearer {token_file.read_text().strip()}"} if token_file.exists() else {}

    def get(self, path: str) -> Any:
        response = httpx.get(self.dashboard + path, headers=self.headers, timeout=10)
        response.raise_for_status()
        return response.json()

    def alive_nodes(self) -> list[dict[str, Any]]:
        try:
            nodes = self.get("/api/v0/nodes")["data"]["result"]["result"]
        except httpx.HTTPError:
            return []
        return [node for node in nodes if node["state"] == "ALIVE"]

    def worker_node_id(self) -> str | None:
        ids = [n["node_id"] for n in self.alive_nodes() if WORKER_RESOURCE in n["resources_total"]]
        return ids[0] if ids else None

    def head_node_id(self) -> str:
        (head,) = [n["node_id"] for n in self.alive_nodes() if n["is_head_node"]]
        return str(head)

    def start_head(self) -> None:
        self.head.start()
        wait_until(self.alive_nodes, 90, "the head node", guard=self.head.check_alive)

    def start_worker(self) -> str:
        """Start a (new) worker node; returns its node id once it is alive."""
        self.worker = self._worker_node()
        self.worker.start()
        node_id: str = wait_until(self.worker_node_id, 90, "the worker node", guard=self.worker.check_alive)
        return node_id

    def kill_worker(self, node_id: str) -> None:
        """Crash the worker node and wait until the cluster knows it is gone."""
        self.worker.kill()
        wait_until(lambda: node_id not in {n["node_id"] for n in self.alive_nodes()}, 90, "the node's death")

    def serve_deploy(self, config: Path) -> None:
        result = subprocess.run(
            [str(BIN / "serve"), "deploy", str(config), "-a", self.dashboard],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def replicas(self) -> dict[str, list[dict[str, Any]]]:
        """Running replicas by deployment name (Serve's REST API, as the dashboard shows them)."""
        app = self.get("/api/serve/applications/")["applications"].get("vidscribe", {})
        return {
            name: [r for r in deployment["replicas"] if r["state"] == "RUNNING"]
            for name, deployment in app.get("deployments", {}).items()
        }

    def describe(self) -> str:
        """Serve's view of the app, for failure messages."""
        try:
            app = self.get("/api/serve/applications/")["applications"].get("vidscribe", {})
        except httpx.HTTPError as error:
            return f"(dashboard unreachable: {error})"
        deployments = {
            name: (d["status"], d.get("message", "")[:200], [(r["state"], r["node_id"][:8]) for r in d["replicas"]])
            for name, d in app.get("deployments", {}).items()
        }
        return f"app {app.get('status')}: {app.get('message', '')[-1000:]} {deployments}"

    def stop(self) -> None:
        self.worker.kill()
        self.head.kill()


def wait_until(check: Callable[[], Any], timeout: float, what: str, guard: Callable[[], None] | None = None) -> Any:
    """Poll `check` until it returns something truthy; fail at the deadline (or when `guard` fails)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if guard is not None:
            guard()
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # A short path: Ray's unix sockets live under the temp dir (limit ~107 bytes).
    temp_dir = Path(tempfile.mkdtemp(prefix="vs2n-", dir="/tmp"))
    cluster = Cluster(temp_dir)
    try:
        cluster.start_head()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


def two_node_config(path: Path, settings: dict[str, Any], http_port: int) -> Path:
    """ray_config.yaml with the test's settings, Transcribers pinned to worker nodes."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    # One proxy (two nodes on one machine cannot both bind the HTTP port), on a free port.
    config["proxy_location"] = "HeadOnly"
    config["http_options"] = {"host": "127.0.0.1", "port": http_port}
    (app,) = config["applications"]
    app["args"] = settings | {"recovery": FAST_RECOVERY}
    (transcriber,) = [d for d in app["deployments"] if d["name"] == "Transcriber"]
    transcriber["ray_actor_options"]["resources"] = {WORKER_RESOURCE: 1}
    transcriber["autoscaling_config"] |= {"min_replicas": 1, "max_replicas": 2, "upscale_delay_s": 1}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.timeout(420)
def test_transcribers_on_the_worker_node_survive_its_loss(
    cluster: Cluster, video_site: Any, fake_llm: Any, wecom: Any, link_default_model: Any
) -> None:
    started = time.monotonic()
    worker_id = cluster.start_worker()
    head_id = cluster.head_node_id()

    wecom.window_s = 2
    data_dir = link_default_model(cluster.temp_dir / "data")
    settings = app_settings(data_dir, video_site, fake_llm, wecom)
    http_port = free_port()
    cluster.serve_deploy(two_node_config(cluster.temp_dir / "serve.yaml", settings, http_port))
    service = Service(f"http://127.0.0.1:{http_port}", TOKEN, data_dir)

    def healthy() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{service.base_url}/healthz", timeout=2).status_code == 200
        return False

    try:
        wait_until(healthy, 150, "the deployed app's /healthz", guard=cluster.head.check_alive)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{cluster.describe()}") from None
    deployed = time.monotonic()

    # 1. A task completes, with every Transcriber on the worker node and the singletons on the head.
    name = uuid.uuid4().hex[:8]
    subtitled = video_site.add_video(f"two-node-subs-{name}", subtitles_vtt=SPEECH_EN_VTT, title=f"Subs {name}")
    first = service.submit(subtitled).json()["task_id"]
    assert service.wait_finished([first], timeout=90)[first]["status"] == "done"
    replicas = cluster.replicas()
    assert replicas["Transcriber"], replicas
    assert {r["node_id"] for r in replicas["Transcriber"]} == {worker_id}
    for singleton in ("Store", "LLMSender"):
        assert [r["node_id"] for r in replicas[singleton]] == [head_id], singleton

    # 2. The worker node dies while a task downloads (throttled: ~11 s for the clip).
    spoken_name = f"two-node-asr-{name}"
    spoken = video_site.add_video(spoken_name, SPEECH_EN_AUDIO, title=f"Spoken {name}", throttle_bps=6_000)
    second = service.submit(spoken).json()["task_id"]

    def downloading() -> bool:
        view = service.task(second)
        return view["status"] == "downloading" and bool(view["progress"].get("downloaded_bytes"))

    wait_until(downloading, 90, "the download to start")
    cluster.kill_worker(worker_id)
    crashed = time.monotonic()
    assert service.task(second)["status"] in PRE_LLM

    # No capacity: the task waits (its lease runs out, it is dispatched again, nobody can take it).
    time.sleep(5)
    assert service.task(second)["status"] in PRE_LLM
    assert cluster.replicas()["Transcriber"] == []

    # 3. Capacity is back: a new worker node; the task is dispatched again and finishes.
    new_worker_id = cluster.start_worker()
    assert new_worker_id != worker_id
    try:
        view = service.wait_finished([second], timeout=150)[second]
    except AssertionError as error:
        raise AssertionError(f"{error}\n{cluster.describe()}") from None
    recovered = time.monotonic()
    assert (view["status"], view["source"]) == ("done", "asr"), view["error"]
    assert word_overlap(SPEECH_EN_TEXT, view["transcript"]) >= HEARD_THE_CLIP, view["transcript"]
    assert video_site.requested(video_site.media_path(spoken_name)) >= 2  # downloaded again, from the start
    assert {r["node_id"] for r in cluster.replicas()["Transcriber"]} == {new_worker_id}

    # Nothing lost, nothing twice: each video's block reached the group once, whole.
    messages = wecom.messages("group-a")
    assert len({m.content for m in messages}) == len(messages)
    views = service.wait_finished([first, second])
    assert_contiguous_blocks(messages, expected_titles=[v["video"]["title"] for v in views.values()])
    assert all(v["delivery"]["state"] == "sent" for v in views.values())
    print(
        f"two-node timings: cluster+deploy {deployed - started:.0f}s, first task and the crash "
        f"{crashed - deployed:.0f}s, recovery {recovered - crashed:.0f}s, total {time.monotonic() - started:.0f}s"
    )
