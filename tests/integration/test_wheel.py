"""The product as pip users get it: the built wheel in a fresh venv, `vidscribe serve` started
from another folder, one link done and delivered to a WeCom receiver on loopback that only
`VIDSCRIBE_WECOM__WEBHOOK_URL` names (operator configuration is trusted).

The wheel is built from the tracked files (a stale build/ cannot leak into it). Its
dependencies come from this project's venv through a .pth line, so what is tested is what
the wheel itself carries (modules, package data, entry point) and declares (`pip check`)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from tests.support.video_site import SPEECH_EN_VTT, VideoSite
from tests.support.wecom_receiver import WeComReceiver

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "wheel-test-token"
PUBLIC_URL = "https://from-my-config.example"
START_TIMEOUT_S = 240
TASK_TIMEOUT_S = 120

pytestmark = pytest.mark.slow


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _tracked_copy(target: Path) -> Path:
    """The checkout as git sees it (tracked and new unignored files), links kept as links."""
    listed = _run("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=ROOT)
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet in the index
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name, follow_symlinks=False)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel installed; returns its `vidscribe` script."""
    work = tmp_path_factory.mktemp("wheel")
    source = _tracked_copy(work / "source")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", work / "dist", source)
    (wheel,) = (work / "dist").glob("vidscribe-*.whl")
    venv = work / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python)
    _run(*pip, "install", "--quiet", "--no-deps", wheel)
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (purelib / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(*pip, "check")  # every requirement the wheel declares is satisfied
    return venv / "bin" / "vidscribe"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_installed_command_prints_its_version(installed: Path) -> None:
    out = _run(installed, "--version")

    assert out.strip() == f"vidscribe {version('vidscribe')}"


@pytest.fixture(scope="module")
def served(
    installed: Path, tmp_path_factory: pytest.TempPathFactory, wecom_server: WeComReceiver, asr_data_dir: Path
) -> Iterator[tuple[str, WeComReceiver]]:
    """`vidscribe serve` from an empty folder, on a free port; stopped with SIGINT."""
    tmp_path = tmp_path_factory.mktemp("serve")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(asr_data_dir / "models", target_is_directory=True)  # no 145 MB copy
    wecom = wecom_server
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIDSCRIBE_")},
        "RAY_ADDRESS": "local",  # never join the Ray instance the rest of the suite uses
        "VIDSCRIBE_DATA_DIR": str(data_dir),
        "VIDSCRIBE_API_TOKENS": TOKEN,
        "VIDSCRIBE_ALLOW_PRIVATE_URLS": "true",  # the video site is on loopback
        "VIDSCRIBE_WECOM__WEBHOOK_URL": wecom.webhook_url("wheel"),
    }
    # The user's own Serve config (`--config`): the packaged one with an argument of theirs.
    own_config = elsewhere / "my_config.yaml"
    packaged = (ROOT / "ray_config.yaml").read_text(encoding="utf-8")
    own_config.write_text(packaged.replace("args: {}", f"args: {{public_url: '{PUBLIC_URL}'}}", 1), encoding="utf-8")
    log = (tmp_path / "serve.log").open("w")
    command = [str(installed), "serve", "--host", "127.0.0.1", "--port", str(port), "--num-cpus", "2"]
    process = subprocess.Popen(
        [*command, "--config", own_config.name],
        cwd=elsewhere,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process, tmp_path / "serve.log")
        yield base, wecom
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()[-4000:]


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"vidscribe serve exited:\n{log.read_text()[-4000:]}"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"no /healthz within {START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def test_the_wheel_serves_a_link_to_a_webhook_on_loopback(
    served: tuple[str, WeComReceiver], video_site: VideoSite
) -> None:
    base, wecom = served
    page = video_site.add_video("wheel-talk", subtitles_vtt=SPEECH_EN_VTT)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    accepted = httpx.post(f"{base}/api/transcribe", json={"url": page}, headers=auth, timeout=30)
    assert accepted.status_code == 202, accepted.text
    task = _wait_finished(base, accepted.json()["task_id"], auth)

    assert task["status"] == "done", task
    assert task["delivery"]["state"] == "sent", task
    delivered = "\n".join(message.content for message in wecom.messages("wheel"))
    assert "The quick brown fox jumps over the lazy dog." in delivered
    assert f"({PUBLIC_URL}/view/{task['task_id']})" in delivered  # the view link: --config was read


def test_a_requests_own_loopback_webhook_is_still_refused(served: tuple[str, WeComReceiver]) -> None:
    base, wecom = served
    body = {"url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "options": {"webhook_url": wecom.webhook_url("x")}}

    refused = httpx.post(f"{base}/api/transcribe", json=body, headers={"Authorization": f"Bearer {TOKEN}"})

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "forbidden_url"


def _wait_finished(base: str, task_id: str, auth: dict[str, str]) -> dict[str, object]:
    deadline = time.monotonic() + TASK_TIMEOUT_S
    while True:
        task: dict[str, object] = httpx.get(f"{base}/api/task/{task_id}", headers=auth, timeout=10).json()
        delivery = task.get("delivery")
        settled = isinstance(delivery, dict) and delivery.get("state") not in ("pending", "sending")
        if task["status"] == "failed" or (task["status"] == "done" and settled) or time.monotonic() > deadline:
            return task
        time.sleep(0.5)
