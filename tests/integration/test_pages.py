"""The web pages, the task list and the event streams.

Fast tests run the Gateway's app on uvicorn in this process over a real Store (the
`local_gateway` fixture); the page tests drive Debian's Chromium with playwright; the
last test submits through the page to the whole service on Ray and follows it to done.
Screenshots land in test-artifacts/ (gitignored) for people to look at.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.domain.task import TaskOptions, TaskStatus
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo
from actors.storage.store import Store
from serve_app.http import listing
from serve_app.http.exports import render_markdown
from tests.support.fake_llm import brief_answers
from tests.support.local_gateway import LocalGateway
from tests.support.service import Service
from tests.support.video_site import SPEECH_EN_VTT

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WEBHOOK = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET-ROBOT-KEY"
PIPELINE = [s.value for s in TaskStatus if s not in (TaskStatus.FAILED, TaskStatus.CANCELLED)]

TITLE = "2024 年第三季度产品发布会：新功能一览"
SUMMARY = "- 发布了三项新功能，重点是离线转写\n- 价格保持不变\n- 下个月开放公测"
PROOFREAD = (
    "大家好，欢迎来到第三季度的产品发布会。今天我们带来三项新功能。\n\n"
    "第一项是离线转写，在没有网络的时候也能把视频变成文字。价格保持不变，下个月开放公测。"
)
SEGMENTS = [
    Segment(start=0.0, end=3.2, text="大家好 欢迎来到第三季度的产品发布会"),
    Segment(start=3.2, end=6.0, text="今天我们带来三项新功能"),
    Segment(start=6.0, end=11.5, text="第一项是离线转写 在没有网络的时候也能把视频变成文字"),
    Segment(start=71.0, end=75.0, text="价格保持不变 下个月开放公测"),
]


# -- arranging tasks in the Store ------------------------------------------------------------


def new_task(store: Store, name: str, **fields: Any) -> str:
    """A task for a fresh URL (with a secret webhook), then `fields` set on it."""
    task, _ = store.create_task(f"https://v.example/{name}-{uuid.uuid4().hex[:6]}", TaskOptions(), webhook=WEBHOOK)
    if fields:
        store.update_task(task.task_id, **fields)
    return task.task_id


def done_task(store: Store, name: str = "launch", title: str = TITLE) -> str:
    video = VideoInfo(
        url=f"https://v.example/{name}", platform="BiliBili", video_id=name, title=title, author="产品部", duration=75
    )
    transcript = Transcript(segments=SEGMENTS, language="zh", duration=75, source=TranscriptSource.ASR)
    return new_task(
        store,
        name,
        video=video,
        transcript=transcript,
        source=TranscriptSource.ASR,
        proofread=PROOFREAD,
        summary=SUMMARY,
        status=TaskStatus.DONE,
        progress=1.0,
        delivery={"state": "sent", "parts_total": 2, "parts_sent": 2},
    )


def advance(store: Store, task_id: str, stages: list[str], step_s: float, **final: Any) -> threading.Thread:
    """Move the task through `stages` (half-way, then full progress in each) in a thread."""

    def run() -> None:
        for stage in stages:
            time.sleep(step_s)
            store.update_task(task_id, status=TaskStatus(stage), progress=0.0, progress_detail={})
            time.sleep(step_s)
            store.update_task(task_id, progress=0.5, progress_detail={"seconds": 5.0, "duration": 10.0})
        store.update_task(task_id, **final)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def read_events(
    url: str, headers: dict[str, str] | None = None, on_first: Callable[[], Any] | None = None
) -> list[tuple[str, Any]]:
    """Every event of a stream until the server closes it; comments come as ("comment", text).
    `on_first` runs when the first event has arrived (start the work then: none is missed)."""
    events: list[tuple[str, Any]] = []
    kind = "message"
    with httpx.stream("GET", url, headers=headers, timeout=20) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                events.append(("comment", line[1:].strip()))
            elif line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
                if on_first is not None and len(events) == 1:
                    on_first()
    return events


@pytest.fixture
def fast_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams poll every 50 ms and send a heartbeat every 0.3 s."""
    monkeypatch.setattr(listing, "POLL_S", 0.05)
    monkeypatch.setattr(listing, "HEARTBEAT_S", 0.3)


# -- GET /api/tasks ----------------------------------------------------------------------------


def test_task_list_needs_a_token(local_gateway: LocalGateway) -> None:
    url = f"{local_gateway.base_url}/api/tasks"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {local_gateway.token}"}):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


def test_task_list_pages_filters_and_search(local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    store = local_gateway.store
    done = done_task(store)
    failed = new_task(store, "broken", status=TaskStatus.FAILED, error={"code": "video_not_found", "message": "404"})
    queued = [new_task(store, f"q{i}") for i in range(3)]
    newest_first = [*reversed(queued), failed, done]

    def tasks(**params: Any) -> dict[str, Any]:
        response = httpx.get(f"{local_gateway.base_url}/api/tasks", params=params, headers=local_gateway.auth)
        assert response.status_code == 200, response.text
        return dict(response.json())

    first = tasks(limit=2)
    assert [t["task_id"] for t in first["tasks"]] == newest_first[:2]
    assert first["next_offset"] == 2
    second = tasks(limit=2, offset=2)
    assert [t["task_id"] for t in second["tasks"]] == newest_first[2:4]
    last = tasks(limit=2, offset=4)
    assert [t["task_id"] for t in last["tasks"]] == newest_first[4:]
    assert last["next_offset"] is None

    assert [t["task_id"] for t in tasks(status="failed")["tasks"]] == [failed]
    assert [t["task_id"] for t in tasks(status="queued")["tasks"]] == list(reversed(queued))
    found = tasks(q="第三季度")["tasks"]
    assert [t["task_id"] for t in found] == [done]
    assert found[0]["title"] == TITLE
    assert found[0]["view_url"] == f"{local_gateway.base_url}/view/{done}"
    assert [t["task_id"] for t in tasks(q=failed)["tasks"]] == [failed]  # a whole task id
    assert tasks(q="no-such-thing")["tasks"] == []
    assert tasks(q="100%_")["tasks"] == []  # LIKE wildcards are literal

    assert "SECRET-ROBOT-KEY" not in json.dumps(tasks())

    # A client's token lists that client's tasks only.
    theirs, _ = store.create_task("https://v.example/team-b", TaskOptions(), client="team-b")
    local_gateway.install(clients={"team-b": {"token": "team-b-token"}})
    team_b = httpx.get(f"{local_gateway.base_url}/api/tasks", headers={"Authorization": "Bearer team-b-token"})
    assert [(t["task_id"], t["client"]) for t in team_b.json()["tasks"]] == [(theirs.task_id, "team-b")]
    assert len(tasks()["tasks"]) == 6  # the plain token sees every task
    for bad in ({"status": "sleeping"}, {"limit": 0}, {"limit": 1000}, {"offset": -1}):
        response = httpx.get(f"{local_gateway.base_url}/api/tasks", params=bad, headers=local_gateway.auth)
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == "invalid_request"


# -- event streams -------------------------------------------------------------------------------


def test_events_arrive_in_stage_order_and_end_at_done(local_gateway: LocalGateway, fast_events: None) -> None:
    store = local_gateway.store
    task_id = new_task(store, "live")
    stages = PIPELINE[1:-1]  # resolving ... delivering
    workers: list[threading.Thread] = []
    events = read_events(
        f"{local_gateway.base_url}/api/task/{task_id}/events",
        local_gateway.auth,
        on_first=lambda: workers.append(advance(store, task_id, stages, 0.15, status=TaskStatus.DONE, progress=1.0)),
    )
    workers[0].join()

    kinds = [kind for kind, _ in events if kind != "comment"]
    assert kinds[-1] == "end"
    seen = [data["status"] for kind, data in events if kind == "stage"]
    assert seen == PIPELINE, seen  # every stage, once, in order: polling at 50 ms misses none
    progress = [data for kind, data in events if kind == "progress"]
    assert progress
    assert all(p["progress"]["fraction"] == 0.5 and p["progress"]["seconds"] == 5.0 for p in progress)
    assert events[-1][1]["status"] == "done"


def test_events_heartbeat_failure_and_errors(
    local_gateway: LocalGateway, fast_events: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, base = local_gateway.store, local_gateway.base_url
    task_id = new_task(store, "slow", status=TaskStatus.TRANSCRIBING)
    failing = threading.Timer(
        1.0,
        store.update_task,
        [task_id],
        {"status": TaskStatus.FAILED, "error": {"code": "asr_failed", "message": "x"}},
    )
    failing.start()
    events = read_events(f"{base}/view/{task_id}/events")  # the view's stream: no token
    failing.join()
    assert ("comment", "keep-alive") in events  # idle for 1 s: heartbeats kept it open
    assert [k for k, _ in events if k != "comment"] == ["stage", "stage", "end"]
    assert events[-1][1]["error"] == {"code": "asr_failed", "message": "x"}

    assert httpx.get(f"{base}/api/task/{task_id}/events").status_code == 401
    missing = httpx.get(f"{base}/api/task/{'A' * 22}/events", headers=local_gateway.auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{base}/view/{'A' * 22}/events").status_code == 404
    monkeypatch.setattr(listing, "MAX_STREAMS", 0)  # a full replica: the page falls back to polling
    busy = httpx.get(f"{base}/view/{task_id}/events")
    assert busy.status_code == 429
    assert busy.headers["retry-after"] == "30"


# -- the token-less view endpoints -------------------------------------------------------------


def test_view_endpoints_expose_one_task_and_no_secret(local_gateway: LocalGateway) -> None:
    store, base = local_gateway.store, local_gateway.base_url
    task_id = done_task(store)
    data = httpx.get(f"{base}/view/{task_id}/data")  # no token
    assert data.status_code == 200
    body = data.json()
    assert body["summary"] == SUMMARY
    assert body["proofread"] == PROOFREAD
    assert [s["start"] for s in body["segments"]] == [s.start for s in SEGMENTS]
    assert "webhook" not in body
    assert "SECRET-ROBOT-KEY" not in data.text
    assert data.headers["cache-control"] == "no-store"
    assert data.headers["referrer-policy"] == "no-referrer"

    page = httpx.get(f"{base}/view/{task_id}")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert httpx.get(f"{base}/view/{'B' * 22}").status_code == 404
    assert httpx.get(f"{base}/view/{'B' * 22}/data").status_code == 404
    assert httpx.get(f"{base}/view/{'x' * 100}/data").status_code == 404

    srt = httpx.get(f"{base}/view/{task_id}/transcript", params={"format": "srt"})
    assert srt.status_code == 200
    assert srt.text.startswith("1\n00:00:00,000 --> 00:00:03,200\n大家好 欢迎来到第三季度的产品发布会\n")
    assert srt.headers["content-type"].startswith("application/x-subrip")
    assert srt.headers["content-disposition"].startswith('attachment; filename="2024.srt"; ')
    assert "filename*=UTF-8''2024%20%E5%B9%B4" in srt.headers["content-disposition"]
    md = httpx.get(f"{base}/view/{task_id}/transcript", params={"format": "md"})
    assert md.status_code == 200
    assert md.headers["content-type"].startswith("text/markdown")
    assert md.text.startswith(f"# {TITLE}\n")
    assert "`1:11` 价格保持不变 下个月开放公测" in md.text
    assert httpx.get(f"{base}/view/{task_id}/transcript", params={"format": "exe"}).status_code == 422
    waiting = new_task(store, "waiting")
    not_ready = httpx.get(f"{base}/view/{waiting}/transcript", params={"format": "txt"})
    assert not_ready.status_code == 409

    assert httpx.get(f"{base}/static/style.css").status_code == 200
    for bad in ("../pages.py", "..%2Fpages.py", "nope.js"):
        assert httpx.get(f"{base}/static/{bad}").status_code == 404, bad


def test_markdown_export_sections() -> None:
    from actors.domain.task import TaskRecord

    task = TaskRecord(
        task_id="t",
        url="https://v.example/x",
        video=VideoInfo(url="https://v.example/x", platform="html5", video_id="x", title="A\ntalk", duration=3725),
        transcript=Transcript(segments=[Segment(start=3661, end=3662, text=" hi ")]),
        summary="- s",
        proofread=None,
    )
    text = render_markdown(task)
    assert text.startswith("# A talk\n\n- 链接 Link: <https://v.example/x>\n- 时长 Duration: 1:02:05\n")
    assert "## 总结 Summary\n\n- s\n" in text
    assert "校对稿" not in text
    assert "`1:01:01` hi  " in text


# -- the pages in Chromium ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium driven by playwright (never a downloaded browser).

    Module-scoped: playwright's sync API keeps an event loop running in this thread while
    it is open, which would break the asyncio tests of later modules."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (./run.sh test installs it when run as root)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def fits_width(page: Any) -> bool:
    """No horizontal scrolling: what a phone user would notice first."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_pages_history_view_live_progress_copy_and_download(local_gateway: LocalGateway, chromium: Any) -> None:
    from playwright.sync_api import expect  # locator waits: the pages' CSP forbids eval'd predicates

    store, base = local_gateway.store, local_gateway.base_url
    done = done_task(store)
    new_task(store, "broken", status=TaskStatus.FAILED, error={"code": "video_not_found", "message": "视频不存在"})
    running = new_task(
        store,
        "running",
        status=TaskStatus.DOWNLOADING,
        progress=0.4,
        progress_detail={"downloaded_bytes": 4_200_000, "total_bytes": 10_500_000},
        video={"url": "https://v.example/running", "platform": "Douyin", "video_id": "r", "title": "正在处理的视频"},
    )
    context = chromium.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(f"{base}/?url=https%3A%2F%2Fb23.tv%2FBV1xx")  # a share shortcut pre-fills the link
    assert page.input_value("#url") == "https://b23.tv/BV1xx"
    assert fits_width(page)
    screenshot(page, "submit-phone")

    # History: asks for the token once, then lists, searches and filters.
    page.goto(f"{base}/history")
    page.fill("#token", local_gateway.token)
    page.click("#token-form button")
    page.wait_for_selector(f"a[data-task-id='{done}']")
    assert page.locator("#tasks li").count() == 3
    assert page.is_hidden("#token-form")
    screenshot(page, "history-phone")
    assert fits_width(page)
    page.fill("#q", "第三季度")
    page.press("#q", "Enter")
    expect(page.locator("#tasks li")).to_have_count(1)
    page.fill("#q", "")
    page.select_option("#status", "failed")
    expect(page.locator("#tasks .badge")).to_have_text(["失败"])
    assert page.inner_text("#tasks .task-title").startswith("https://v.example/broken")

    # A finished task: summary, proofread paragraphs, timed segments, copy, downloads.
    page.goto(f"{base}/view/{done}")
    page.wait_for_selector("#summary-box:not([hidden])")
    assert page.inner_text("#title") == TITLE
    assert page.inner_text("#summary") == SUMMARY
    assert page.locator("#proofread p").count() == 2
    assert page.locator("#segments li").count() == len(SEGMENTS)
    assert page.inner_text("#segments li:last-child .ts") == "1:11"
    assert page.is_hidden("#progress-box")
    assert fits_width(page)
    screenshot(page, "view-done-phone")
    page.click("button[data-copy='summary']")
    expect(page.locator("button[data-copy='summary']")).to_contain_text("已复制")
    assert page.evaluate("navigator.clipboard.readText()") == SUMMARY
    with page.expect_download() as download_info:
        page.click("a[data-format='md']")
    markdown = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert markdown.startswith(f"# {TITLE}\n")
    assert SUMMARY in markdown

    # A running task: the progress card follows the stream to done without a reload.
    page.goto(f"{base}/view/{running}")
    page.wait_for_selector("#progress-box:not([hidden])")
    assert page.inner_text("#stages li.current") == "下载"
    assert "40%" in page.inner_text("#progress-text")
    assert "4.0 MB / 10.0 MB" in page.inner_text("#progress-text")
    screenshot(page, "view-progress-phone")
    transcript = Transcript(segments=SEGMENTS[:2], source=TranscriptSource.SUBTITLES)
    worker = advance(
        store,
        running,
        PIPELINE[3:-1],
        0.3,
        status=TaskStatus.DONE,
        progress=1.0,
        transcript=transcript,
        proofread=PROOFREAD,
        summary=SUMMARY,
    )
    page.wait_for_selector("#stages li.current[data-stage='proofreading']")
    page.wait_for_selector("#summary-box:not([hidden])")
    worker.join()
    assert page.is_hidden("#progress-box")
    assert page.inner_text("#summary") == SUMMARY
    context.close()

    # The desktop layout of the same pages, for people to look at.
    desktop = chromium.new_page(viewport=DESKTOP)
    desktop.goto(f"{base}/view/{done}")
    desktop.wait_for_selector("#summary-box:not([hidden])")
    screenshot(desktop, "view-done-desktop")
    desktop.goto(f"{base}/view/{'C' * 22}")
    assert "任务不存在" in desktop.inner_text("h1")
    desktop.close()
    assert errors == []


def test_the_view_page_cancels_and_retries_for_a_token_holder(local_gateway: LocalGateway, chromium: Any) -> None:
    from playwright.sync_api import expect

    store, base = local_gateway.store, local_gateway.base_url
    running = new_task(store, "to-cancel", status=TaskStatus.DOWNLOADING, progress=0.2)
    page = chromium.new_page(viewport=DESKTOP)
    page.set_default_timeout(15_000)
    page.goto(f"{base}/view/{running}")
    page.wait_for_selector("#progress-box:not([hidden])")
    assert page.is_hidden("#actions")  # the link alone reads the task, it does not change it
    page.evaluate(f"localStorage.setItem('vidscribe.token', '{local_gateway.token}')")  # as the submit page does
    page.reload()
    expect(page.locator("button[data-action='cancel']")).to_be_visible()
    assert page.is_hidden("button[data-action='retry']")
    page.click("button[data-action='cancel']")
    expect(page.locator("#meta .badge")).to_have_text("已取消")
    assert page.is_hidden("button[data-action='cancel']")
    page.click("button[data-action='retry']")
    expect(page.locator("#meta .badge")).to_have_text("排队中")
    task = store.get_task(running)
    assert task is not None and task.status is TaskStatus.QUEUED
    page.close()


@pytest.mark.slow
def test_submit_page_to_done_on_the_whole_service(
    service_factory: Any, video_site: Any, fake_llm: Any, chromium: Any
) -> None:
    fake_llm.latency = 1.0  # proofreading takes a visible moment: the page shows progress first
    fake_llm.responder = brief_answers  # a summary of the short talk too
    service: Service = service_factory(llm={"summary_min_chars": 0})
    name = f"page-{uuid.uuid4().hex[:8]}"
    video_url = video_site.add_video(name, subtitles_vtt=SPEECH_EN_VTT, title=f"Baker talk {name}")

    page = chromium.new_page(viewport=DESKTOP)
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(service.base_url + "/")
    page.fill("#url", f"【Baker talk】 {video_url} 复制此链接，打开App观看")  # a phone app's share text
    page.fill("#token", service.token)
    started = time.monotonic()
    page.click("#submit")
    page.wait_for_url(f"{service.base_url}/view/*")
    task_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#progress-box:not([hidden])")
    screenshot(page, "service-view-progress-desktop")
    page.wait_for_selector("#meta .badge[data-status='done']", timeout=180_000)
    elapsed = time.monotonic() - started
    view = service.task(task_id)
    assert view["status"] == "done", view
    assert view["video"]["url"] == video_url
    assert page.inner_text("#summary") == view["summary"].strip()
    assert view["summary"].startswith("- ")
    assert "baker" in page.inner_text("#proofread").lower()
    assert page.locator("#segments li").count() == 3
    screenshot(page, "service-view-done-desktop")

    with page.expect_download() as download_info:
        page.click("a[data-format='srt']")
    srt = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert srt.startswith("1\n00:00:00,300 --> 00:00:03,600\nThe quick brown fox jumps over the lazy dog.\n")
    assert "and the smell of fresh bread fills the street." in srt
    assert download_info.value.suggested_filename.endswith(".srt")

    # The token the submit page stored lets the history page list the task.
    page.goto(service.base_url + "/history")
    page.wait_for_selector(f"a[data-task-id='{task_id}']")
    page.close()
    assert errors == []

    # The same stream through Ray Serve's proxy: events arrive as they happen, in order.
    asr_url = video_site.add_video(f"{name}-asr", title=f"Spoken {name}")
    submitted = service.submit(asr_url)
    assert submitted.status_code == 202
    asr_id = submitted.json()["task_id"]
    first_at: float | None = None
    statuses: list[str] = []
    with httpx.stream("GET", f"{service.base_url}/api/task/{asr_id}/events", headers=service.auth, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                first_at = first_at or time.monotonic()
                data = json.loads(line.removeprefix("data: "))
                if not statuses or statuses[-1] != data["status"]:
                    statuses.append(data["status"])
    streamed_for = time.monotonic() - (first_at or time.monotonic())
    assert statuses[-1] == "done"
    assert statuses == sorted(set(statuses), key=PIPELINE.index), statuses
    assert "transcribing" in statuses
    assert streamed_for > 1.0  # not buffered to the end by the proxy
    print(f"submit page -> done in {elapsed:.1f} s; ASR task streamed {statuses} over {streamed_for:.1f} s")
