"""`vidscribe submit` / `vidscribe status` against a running service (and their plumbing)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from actors.domain.task import TaskOptions, TaskStatus
from serve_app.cli.client import ServiceClient, parse_sse, resolve_server, resolve_token
from serve_app.cli.main import main
from serve_app.http import listing
from tests.support.fake_llm import FakeLLM, brief_answers
from tests.support.local_gateway import LocalGateway
from tests.support.service import Service, free_port
from tests.support.video_site import SPEECH_EN_VTT, VideoSite


def test_token_and_server_come_from_flags_env_or_the_token_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("VIDSCRIBE_TOKEN", "VIDSCRIBE_API_TOKENS", "VIDSCRIBE_SERVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VIDSCRIBE_DATA_DIR", str(tmp_path))
    assert resolve_token(None) is None
    (tmp_path / "api_token").write_text("from-file\n")  # what `vidscribe serve` writes
    assert resolve_token(None) == "from-file"
    monkeypatch.setenv("VIDSCRIBE_API_TOKENS", "first, second")
    assert resolve_token(None) == "first"
    monkeypatch.setenv("VIDSCRIBE_TOKEN", "from-env")
    assert resolve_token(None) == "from-env"
    assert resolve_token("flag") == "flag"

    assert resolve_server(None) == "http://127.0.0.1:8000"
    monkeypatch.setenv("VIDSCRIBE_SERVER", "https://vs.example/")
    assert resolve_server(None) == "https://vs.example"
    assert resolve_server("http://h:1") == "http://h:1"


def test_parse_sse_skips_comments_and_joins_data_lines() -> None:
    lines = [
        "retry: 3000",
        "",
        ": keep-alive",
        "",
        "id: 1",
        "event: stage",
        'data: {"a":',
        "data: 1}",
        "",
        "data: {}",
        "",
    ]
    assert list(parse_sse(iter(lines))) == [("stage", {"a": 1}), ("message", {})]


def test_unreachable_server_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    server = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["status", "abc", "--server", server, "--token", "t"]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach {server}" in err
    assert "[unreachable]" in err


def test_client_follows_the_event_stream(local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "POLL_S", 0.05)
    store = local_gateway.store
    task, _ = store.create_task(f"https://v.example/{uuid.uuid4().hex}", TaskOptions())

    def work() -> None:
        for stage in ("resolving", "transcribing", "done"):
            store.update_task(task.task_id, status=TaskStatus(stage), progress=1.0 if stage == "done" else 0.3)

    threading.Timer(0.3, work).start()
    client = ServiceClient(local_gateway.base_url, local_gateway.token)
    events = list(client.events(task.task_id))
    client.close()
    assert events[-1][0] == "end"
    statuses = [data["status"] for kind, data in events if kind == "stage"]
    assert statuses[0] == "queued"
    assert statuses[-1] == "done"


@pytest.mark.slow
def test_submit_wait_and_status_against_the_service(
    service_factory: Callable[..., Service],
    video_site: VideoSite,
    fake_llm: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_llm.responder = brief_answers  # a summary of the short talk too
    service = service_factory(llm={"summary_min_chars": 0})
    name = f"cli-{uuid.uuid4().hex[:8]}"
    title = f"CLI talk {name}"
    url = video_site.add_video(name, subtitles_vtt=SPEECH_EN_VTT, title=title)
    flags = ["--server", service.base_url, "--token", service.token]

    assert main(["submit", url, "--wait", *flags]) == 0
    out, err = capsys.readouterr()
    accepted = re.search(r"accepted task (\S+):", err)
    assert accepted, err
    task_id = accepted.group(1)
    view = service.task(task_id)
    assert view["status"] == "done"
    assert out.startswith(f"# {view['video']['title']}\n{service.base_url}/view/{task_id}\n")
    assert f"## 总结 Summary\n\n{view['summary'].strip()}\n" in out
    assert f"## 校对稿 Proofread\n\n{view['proofread'].strip()}\n" in out
    assert "done" in err
    assert "100%" in err  # the progress bar reached the end

    # status, from the environment's server and token
    monkeypatch.setenv("VIDSCRIBE_SERVER", service.base_url)
    monkeypatch.setenv("VIDSCRIBE_TOKEN", service.token)
    assert main(["status", task_id]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^status:\s+done$", out, re.MULTILINE), out
    assert f"view:     {service.base_url}/view/{task_id}" in out
    assert main(["status", task_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"] == view["summary"]

    # without --wait: the task id on stdout, for scripts
    again = video_site.add_video(f"{name}-2", subtitles_vtt=SPEECH_EN_VTT)
    assert main(["submit", again]) == 0
    second_id = capsys.readouterr().out.strip()
    assert service.task(second_id)["task_id"] == second_id

    # failures: exit 1 and a reason a person can act on
    assert main(["submit", video_site.missing, "--wait"]) == 1
    assert "task failed:" in capsys.readouterr().err
    assert main(["status", task_id, "--token", "wrong"]) == 1
    assert "[unauthorized]" in capsys.readouterr().err
    assert main(["status", "A" * 22]) == 1
    assert "[not_found]" in capsys.readouterr().err
