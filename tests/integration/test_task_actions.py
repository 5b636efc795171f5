"""Cancel, retry and redeliver: the Store's rules, the API (scoped to the caller's client),
the CLI, and a worker and a mailbox that stop when their task is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.delivery.mailbox import Mailbox
from actors.domain.errors import TaskCancelled
from actors.domain.outbox import CONTENT_KEY
from actors.domain.task import TaskOptions, TaskStatus
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo
from actors.speech.job import ProgressReporter, TranscribeJob
from actors.speech.worker import TranscribeWorker
from actors.storage.client import LocalStoreClient
from actors.storage.store import STORE_FILE, Store
from serve_app.cli.main import main
from serve_app.settings import Settings
from tests.support.local_gateway import LocalGateway
from tests.support.video_site import SPEECH_EN_AUDIO, SPEECH_EN_VTT, VideoSite
from tests.support.wecom_receiver import WeComReceiver, assert_contiguous_blocks

TEAM_A, TEAM_B = "team-a-token", "team-b-token"
CLIENTS = {"team-a": {"token": TEAM_A}, "team-b": {"token": TEAM_B}}


def transcribed(store: Store, title: str, *, client: str | None = None, text: str = "今天我们聊一聊。") -> str:
    task, _ = store.create_task(f"https://videos.example/{title}", TaskOptions(summary=False), client=client)
    video = VideoInfo(url=task.url, platform="example", video_id=title, title=title, duration=60)
    transcript = Transcript(segments=[Segment(start=0, end=60, text=text)], language="zh", source=TranscriptSource.ASR)
    store.update_task(task.task_id, video=video, transcript=transcript, status=TaskStatus.DELIVERING)
    return task.task_id


# -- the Store ------------------------------------------------------------------------------


def test_a_cancelled_task_takes_no_more_writes_and_no_blocks(tmp_path: Path) -> None:
    store = Store(tmp_path / "vidscribe.db")
    task, _ = store.create_task("https://videos.example/a", TaskOptions())
    store.update_task(task.task_id, status=TaskStatus.DOWNLOADING)
    assert store.cancel(task.task_id) == "cancelled"
    record = store.get_task(task.task_id)
    assert record is not None and record.status is TaskStatus.CANCELLED and record.status.finished
    with pytest.raises(TaskCancelled):
        store.update_task(task.task_id, progress=0.5)  # the worker's next step
    with pytest.raises(TaskCancelled):
        store.add_block(task.task_id, "lane", CONTENT_KEY, [("text", "markdown")])
    assert store.cancel(task.task_id) == "finished"
    assert not store.redeliver(task.task_id)


def test_cancel_drops_blocks_not_yet_started_but_never_cuts_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "vidscribe.db")
    waiting, sending = transcribed(store, "waiting"), transcribed(store, "sending")
    store.add_block(waiting, "lane", CONTENT_KEY, [("w1", "markdown"), ("w2", "markdown")])
    started = store.add_block(sending, "lane", CONTENT_KEY, [("s1", "markdown"), ("s2", "markdown")])
    store.mark_part_sent(started, 0)
    assert store.cancel(sending) == "sending"  # part-way out: it finishes whole
    assert store.cancel(waiting) == "cancelled"
    assert [b.task_id for b in [store.next_block("lane")] if b] == [sending]
    store.mark_part_sent(started, 1)
    assert store.next_block("lane") is None  # the cancelled block never goes out


def test_retry_queues_a_failed_or_cancelled_task_again_and_rebuilds_its_block(tmp_path: Path) -> None:
    store = Store(tmp_path / "vidscribe.db")
    task_id = transcribed(store, "failed")
    block = store.add_block(task_id, "lane", CONTENT_KEY, [("p1", "markdown")])
    store.abandon_block(block, 93000, "refused")
    store.fail_task(task_id, "delivery_failed", "refused")
    assert store.retry(task_id)
    record = store.get_task(task_id)
    assert record is not None
    assert (record.status, record.error, record.attempts) == (TaskStatus.QUEUED, None, 0)
    assert record.transcript is not None  # kept: the worker starts from the first missing step
    assert store.task_blocks(task_id) == []  # built anew when it is delivered again
    assert not store.retry(task_id)  # queued: not retryable
    assert store.cancel(task_id) == "cancelled" and store.retry(task_id)


def test_a_live_page_reads_the_state_only_when_it_changed(tmp_path: Path) -> None:
    store = Store(tmp_path / "vidscribe.db")
    task_id = transcribed(store, "live", text="很长的转录。" * 5000)
    state = store.task_state(task_id)
    assert state is not None and state.status is TaskStatus.DELIVERING
    assert state.transcript is None and state.video is None  # the texts stay in the Store
    assert store.task_state(task_id, since=state.updated_at) is None  # unchanged: nothing read
    store.update_task(task_id, progress=0.5)
    moved = store.task_state(task_id, since=state.updated_at)
    assert moved is not None and moved.progress == 0.5
    assert store.task_state("no-such-task") is None


# -- the API, scoped to the caller's client ---------------------------------------------------


def test_the_api_cancels_retries_and_redelivers_only_the_callers_tasks(local_gateway: LocalGateway) -> None:
    local_gateway.install(clients=CLIENTS)
    store, base = local_gateway.store, local_gateway.base_url
    mine = transcribed(store, "mine", client="team-a")
    done = transcribed(store, "done", client="team-a")
    store.update_task(done, status=TaskStatus.DONE)
    store.add_block(done, "lane", CONTENT_KEY, [("d1", "markdown")])
    as_a = {"Authorization": f"Bearer {TEAM_A}"}
    as_b = {"Authorization": f"Bearer {TEAM_B}"}

    with httpx.Client(base_url=base, timeout=10) as http:
        for method, path in [
            ("GET", ""),
            ("DELETE", ""),
            ("POST", "/retry"),
            ("POST", "/redeliver"),
            ("GET", "/transcript"),
            ("GET", "/events"),
        ]:
            answer = http.request(method, f"/api/task/{mine}{path}", headers=as_b)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "not_found"
        assert store.get_task(mine).status is TaskStatus.DELIVERING  # type: ignore[union-attr]

        assert http.post(f"/api/task/{mine}/retry", headers=as_a).json()["error"]["code"] == "not_retryable"
        cancelled = http.delete(f"/api/task/{mine}", headers=as_a)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        again = http.delete(f"/api/task/{mine}", headers=as_a)
        assert (again.status_code, again.json()["error"]["code"]) == (409, "already_finished")
        dispatched = local_gateway.work.dispatched
        retried = http.post(f"/api/task/{mine}/retry", headers=as_a)
        assert retried.status_code == 202 and retried.json()["status"] == "queued"
        assert local_gateway.work.dispatched == dispatched + 1  # a Transcriber is handed the task at once

        redelivered = http.post(f"/api/task/{done}/redeliver", headers=local_gateway.auth)  # the operator's token
        assert redelivered.status_code == 202 and redelivered.json()["status"] == "delivering"
        schema = http.get("/openapi.json").json()["paths"]
        assert {"get", "delete"} <= set(schema["/api/task/{task_id}"])
        assert "post" in schema["/api/task/{task_id}/retry"] and "post" in schema["/api/task/{task_id}/redeliver"]


def test_the_cli_cancels_and_retries(local_gateway: LocalGateway, capsys: pytest.CaptureFixture[str]) -> None:
    task_id = transcribed(local_gateway.store, "cli")
    flags = ["--server", local_gateway.base_url, "--token", local_gateway.token]
    assert main(["cancel", task_id, *flags]) == 0
    assert capsys.readouterr().out == f"cancel: task {task_id} is cancelled\n"
    assert main(["cancel", task_id, *flags]) == 1
    assert "[already_finished]" in capsys.readouterr().err
    assert main(["retry", task_id, *flags]) == 0
    assert capsys.readouterr().out == f"retry: task {task_id} is queued\n"


# -- the live app --------------------------------------------------------------------------------


@pytest.mark.slow
def test_on_the_live_app_a_cancelled_download_stops_and_a_retried_failure_completes(
    service_factory: Any, video_site: VideoSite, wecom: WeComReceiver
) -> None:
    service = service_factory()
    name = uuid.uuid4().hex[:8]
    slow = video_site.add_video(f"slow-{name}", SPEECH_EN_AUDIO, title=f"Slow {name}", throttle_bps=5_000)
    flaky = video_site.add_video(f"flaky-{name}", subtitles_vtt=SPEECH_EN_VTT, title=f"Flaky {name}")
    video_site.fail_first(flaky, [404])  # the first look finds nothing
    cancelled, retried = (service.submit(url).json()["task_id"] for url in (slow, flaky))

    deadline = time.monotonic() + 60
    while not service.task(cancelled)["progress"].get("downloaded_bytes"):
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.2)
    answer = httpx.delete(f"{service.base_url}/api/task/{cancelled}", headers=service.auth, timeout=30)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"

    failed = service.wait_finished([retried])[retried]
    assert (failed["status"], failed["error"]["code"]) == ("failed", "video_not_found")
    answer = httpx.post(f"{service.base_url}/api/task/{retried}/retry", headers=service.auth, timeout=30)
    assert answer.status_code == 202 and answer.json()["status"] == "queued"
    done = service.wait_finished([retried])[retried]
    assert (done["status"], done["source"], done["error"]) == ("done", "subtitles", None)

    media = video_site.media_path(f"slow-{name}")
    assert service.task(cancelled)["status"] == "cancelled"
    _wait_released(service.data_dir / STORE_FILE, cancelled)  # its worker has stopped, not only the record
    assert video_site.requested(media) == 1  # its one download was stopped, not started again
    assert_contiguous_blocks(wecom.messages("group-a"), expected_titles=[f"Flaky {name}"])


def _wait_released(database: Path, task_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        while db.execute("SELECT lease_owner FROM tasks WHERE task_id = ?", (task_id,)).fetchone()[0]:
            assert time.monotonic() < deadline, f"no worker let go of task {task_id}"
            time.sleep(0.2)


# -- the worker and the mailbox stop -------------------------------------------------------------


async def wait_status(store: Store, task_id: str, status: TaskStatus, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (task := store.get_task(task_id)) is None or task.status is not status:
        assert time.monotonic() < deadline, f"task {task_id} is {task and task.status}, not {status}"
        await asyncio.sleep(0.05)


async def test_a_download_stops_when_its_task_is_cancelled(
    tmp_path: Path, video_site: VideoSite, fake_llm: Any, wecom: WeComReceiver
) -> None:
    # 68 kB of media at 5 kB/s: a download of about 14 s, cancelled after its first progress.
    slow = video_site.add_video("cancel-slow", SPEECH_EN_AUDIO, title="Slow", throttle_bps=5_000)
    settings = Settings(
        data_dir=tmp_path, allow_private_urls=True, llm=fake_llm.settings(), wecom=wecom.settings("group")
    )
    store = Store(tmp_path / "vidscribe.db")
    client = LocalStoreClient(store)
    mailbox = Mailbox(settings, client)
    mailbox.start()

    def no_asr() -> Any:
        raise AssertionError("a cancelled download never reaches ASR")

    job = TranscribeJob(client, settings, no_asr, asyncio.Semaphore(1))
    worker = TranscribeWorker(client, job, mailbox, lease_s=30)
    try:
        task, _ = store.create_task(slow, TaskOptions(summary=False))
        started = time.monotonic()
        running = asyncio.create_task(worker.process())
        deadline = time.monotonic() + 20
        while not store.get_task(task.task_id).progress_detail.get("downloaded_bytes"):  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no download progress"
            await asyncio.sleep(0.05)
        assert store.cancel(task.task_id) == "cancelled"
        assert await asyncio.wait_for(running, 15) == task.task_id
        stopped_after = time.monotonic() - started
        assert store.claim_task(task.task_id, "another-worker", 30) is None  # finished: never claimed again
        final = store.get_task(task.task_id)
    finally:
        await mailbox.close()
        store.close()
    assert final is not None and final.status is TaskStatus.CANCELLED and final.error is not None
    assert final.error.code == "cancelled"
    assert stopped_after < 9, f"the worker went on for {stopped_after:.1f} s"  # the download needs ~14 s
    assert wecom.messages("group") == []  # nothing was ever sent for it


def test_progress_in_the_asr_thread_raises_once_the_task_is_cancelled(tmp_path: Path) -> None:
    store = Store(tmp_path / "vidscribe.db")
    task, _ = store.create_task("https://videos.example/asr", TaskOptions())
    store.update_task(task.task_id, status=TaskStatus.TRANSCRIBING)

    async def run() -> None:
        reporter = ProgressReporter(LocalStoreClient(store), task.task_id, asyncio.get_running_loop())
        await asyncio.to_thread(reporter, 1.0, 10.0, seconds=1.0, duration=10.0)
        await asyncio.sleep(0.2)
        store.cancel(task.task_id)
        await asyncio.to_thread(reporter, 10.0, 10.0, seconds=10.0, duration=10.0)  # the last update says so
        await asyncio.sleep(0.2)
        with pytest.raises(TaskCancelled):  # the recognizer's next segment stops there
            await asyncio.to_thread(reporter, 10.0, 10.0)

    asyncio.run(run())


async def test_a_block_part_way_out_finishes_whole_and_one_not_started_is_never_sent(
    tmp_path: Path, fake_llm: Any, wecom: WeComReceiver
) -> None:
    wecom.delay_for("group", 0.5)  # each message takes half a second to be answered
    settings = Settings(data_dir=tmp_path, llm=fake_llm.settings(), wecom=wecom.settings("group"))
    store = Store(tmp_path / "vidscribe.db")
    text = "今天我们来聊一聊视频转录。这个系统会先下载音频，然后识别语音并校对文字。" * 100  # 3 parts
    first, second = transcribed(store, "先发", text=text), transcribed(store, "后发", text=text)
    mailbox = Mailbox(settings, LocalStoreClient(store))
    mailbox.start()
    try:
        for task_id in (first, second):
            store.update_task(task_id, status=TaskStatus.PROOFREADING)
            await mailbox.enqueue(task_id)
        deadline = time.monotonic() + 30
        while (found := store.find_block(first, CONTENT_KEY)) is None or found[1] == 0:  # its first part is out
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert store.cancel(first) == "sending"
        assert store.cancel(second) == "cancelled"
        await wait_status(store, first, TaskStatus.DONE)
        await asyncio.sleep(1.5)  # time for a wrongly sent second block to show
    finally:
        await mailbox.close()
        store.close()
    counts = assert_contiguous_blocks(wecom.messages("group"), expected_titles=["先发"])
    assert counts["先发"]["校对"] >= 2
