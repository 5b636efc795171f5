"""The LLMSender's mailbox with real parts: SQLite store, openai client against the fake
LLM server, WeCom client against the limit-enforcing receiver. No Ray here: the
deployment is a thin shell around `Mailbox` (Ray-level tests are in test_service.py)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from actors.delivery.mailbox import Mailbox
from actors.delivery.render import strip_header
from actors.domain.task import TaskOptions, TaskRecord, TaskStatus, TokenUsage
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo
from actors.storage.client import LocalStoreClient
from actors.storage.store import Store
from serve_app.settings import Settings
from tests.support.hostile import HOSTILE_TITLE, assert_seen_as_words_and_whole, hostile_transcript
from tests.support.wecom_receiver import UPLOAD_PATH, WeComReceiver, assert_contiguous_blocks

SENTENCES_ZH = [
    "今天我们来聊一聊视频转录。",
    "这个系统会先下载音频！",
    "然后识别语音并校对文字？",
    "最后把总结发到群里。",
]


def transcript_text(sentences: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(SENTENCES_ZH) for _ in range(sentences))


def add_transcribed_task(store: Store, title: str, text: str, **options: Any) -> str:
    task, _ = store.create_task(f"https://videos.example/{title}", TaskOptions(**options))
    video = VideoInfo(url=task.url, platform="example", video_id=title, title=title, duration=60)
    transcript = Transcript(segments=[Segment(start=0, end=60, text=text)], language="zh", source=TranscriptSource.ASR)
    store.update_task(task.task_id, video=video, transcript=transcript, source=transcript.source)
    store.update_task(task.task_id, status=TaskStatus.TRANSCRIBING)
    return task.task_id


def settings_for(tmp_path: Path, fake_llm: Any, wecom: Any, *, llm: bool = True, **wecom_overrides: Any) -> Settings:
    llm_settings = (
        {
            "base_url": fake_llm.base_url,
            "proofread_model": "fake-proofread",
            "summary_model": "fake-summary",
            "timeout_s": 5,
            "retry_base_s": 0.02,
            "max_retries": 2,
            "chunk_chars": 1500,
            "summary_min_chars": 100,
        }
        if llm
        else {}
    )
    wecom.window_s = 1  # the real limit logic (20 per window), a shorter window
    return Settings(data_dir=tmp_path, llm=llm_settings, wecom=wecom.settings("group", **wecom_overrides))


async def wait_all(store: Store, task_ids: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = [store.get_task(t) for t in task_ids]
        if all(t is not None and t.status.finished for t in tasks):
            return
        await asyncio.sleep(0.1)
    states = {t: store.get_task(t).status for t in task_ids}  # type: ignore[union-attr]
    raise AssertionError(f"not finished in {timeout}s: {states}")


@pytest.fixture
def store(tmp_path: Path) -> Any:
    db = Store(tmp_path / "vidscribe.db")
    yield db
    db.close()


async def run_mailbox(
    settings: Settings,
    store: Store,
    task_ids: list[str],
    *,
    enqueue: bool = True,
    timeout: float = 90,
    **callbacks: Any,
) -> None:
    """Run a mailbox until every task is finished; `enqueue=False` leaves it to recovery;
    `callbacks` are the Mailbox's `on_*` observers."""
    mailbox = Mailbox(settings, LocalStoreClient(store), **callbacks)
    mailbox.start()
    try:
        if enqueue:
            await asyncio.gather(*(mailbox.enqueue(task_id) for task_id in task_ids))
        await wait_all(store, task_ids, timeout)
        deadline = time.monotonic() + timeout
        while store.lanes_with_pending() and time.monotonic() < deadline:  # notices queued after a block
            await asyncio.sleep(0.05)
    finally:
        await mailbox.close()


@pytest.mark.parametrize("injected", [(), ("45009", "-1", "45009", "-1", "45009")])
async def test_blocks_arrive_contiguous_in_order(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: Any, injected: tuple[str, ...]
) -> None:
    fake_llm.latency = (0.01, 0.4)
    lengths = [3, 400, 12, 900, 40, 5, 1500, 60, 200, 8, 2500, 30]  # sentences: 1 to ~12 parts
    titles = [f"视频{index:02d}" for index in range(len(lengths))]
    task_ids = [
        add_transcribed_task(store, t, transcript_text(n, i))
        for i, (t, n) in enumerate(zip(titles, lengths, strict=False))
    ]
    wecom.script(*injected)

    # Every part as a message (no file attachments): long blocks are what contiguity is about.
    await run_mailbox(settings_for(tmp_path, fake_llm, wecom, attach_after_messages=0), store, task_ids)

    counts = assert_contiguous_blocks(wecom.messages("group"), expected_titles=titles)
    assert max(sum(c.values()) for c in counts.values()) >= 5  # some videos needed many parts
    for task_id in task_ids:
        task = store.get_task(task_id)
        assert task is not None and task.status is TaskStatus.DONE, task
        assert task.delivery.state == "sent" and task.delivery.parts_sent == task.delivery.parts_total
        assert task.proofread


async def test_generation_overlaps_across_videos(tmp_path: Path, store: Store, fake_llm: Any, wecom: Any) -> None:
    """No global lock: several videos are at the LLM at once, delivery stays serial."""
    fake_llm.latency = 0.3
    titles = [f"v{index}" for index in range(6)]
    task_ids = [add_transcribed_task(store, t, transcript_text(20, i)) for i, t in enumerate(titles)]
    await run_mailbox(settings_for(tmp_path, fake_llm, wecom), store, task_ids)
    assert fake_llm.max_in_flight >= 3
    assert_contiguous_blocks(wecom.messages("group"), expected_titles=titles)


async def test_without_llm_raw_transcript_and_notice(tmp_path: Path, store: Store, fake_llm: Any, wecom: Any) -> None:
    task_id = add_transcribed_task(store, "原始", transcript_text(30, 1))
    await run_mailbox(settings_for(tmp_path, fake_llm, wecom, llm=False), store, [task_id])
    contents = [m.content for m in wecom.messages("group")]
    assert contents[0].startswith("【状态】") and "LLM" in contents[0]
    assert all(c.startswith("【转录 ") for c in contents[1:])
    assert not fake_llm.requests
    assert store.get_task(task_id).status is TaskStatus.DONE  # type: ignore[union-attr]


async def test_llm_failure_still_delivers_transcript(tmp_path: Path, store: Store, fake_llm: Any, wecom: Any) -> None:
    fake_llm.script("500", "500", "500", "500", "500", "500")
    task_id = add_transcribed_task(store, "坏模型", transcript_text(10, 2), summary=False)
    await run_mailbox(settings_for(tmp_path, fake_llm, wecom), store, [task_id])
    messages = wecom.messages("group")
    assert_contiguous_blocks(messages, expected_titles=["坏模型"])
    assert messages[0].content.startswith("【转录 1/")
    notices = [m.content for m in messages if m.content.startswith("【状态】")]
    assert len(notices) == 1
    assert "校对失败" in notices[0]
    task = store.get_task(task_id)
    assert task is not None and task.status is TaskStatus.DONE
    assert any("校对失败" in w for w in task.warnings)


@pytest.mark.parametrize("stream", [False, True], ids=["answered", "streamed"])
async def test_each_llm_step_records_the_tokens_the_server_counted(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: Any, stream: bool
) -> None:
    settings = settings_for(tmp_path, fake_llm, wecom)
    settings.llm.stream = stream
    settings.llm.chunk_chars = 200  # several proofread requests: their tokens add up
    task_id = add_transcribed_task(store, "用量", transcript_text(40, 7))
    observed: list[tuple[str, TokenUsage]] = []

    def on_llm_usage(task: TaskRecord, usage: TokenUsage) -> None:
        observed.append((task.task_id, usage))

    await run_mailbox(settings, store, [task_id], on_llm_usage=on_llm_usage)

    task = store.get_task(task_id)
    assert task is not None and task.status is TaskStatus.DONE
    assert len([r for r in fake_llm.requests if r.kind == "proofread"]) > 1
    expected = server_counted(fake_llm)
    assert all(usage.prompt_tokens > 0 and usage.completion_tokens > 0 for usage in expected.values())
    assert task.llm_usage == expected
    assert observed == [(task_id, expected["proofread"]), (task_id, expected["summary"])]


async def test_a_failed_llm_step_still_counts_the_tokens_it_cost(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: Any
) -> None:
    fake_llm.script(*["nonsense"] * 20)  # every answer is rejected: both steps fail after paying
    task_id = add_transcribed_task(store, "白花钱", transcript_text(40, 8))

    await run_mailbox(settings_for(tmp_path, fake_llm, wecom), store, [task_id])

    task = store.get_task(task_id)
    assert task is not None and task.status is TaskStatus.DONE
    assert task.proofread is None and task.summary is None
    assert any("校对失败" in w for w in task.warnings) and any("总结失败" in w for w in task.warnings)
    expected = server_counted(fake_llm)
    assert all(usage.prompt_tokens > 0 and usage.completion_tokens > 0 for usage in expected.values())
    assert task.llm_usage == expected


def server_counted(fake_llm: Any) -> dict[str, TokenUsage]:
    """Each step's tokens as the fake server counted them, over every request it answered."""

    def counted(kind: str, field: str) -> int:
        return sum(r.usage[field] for r in fake_llm.requests if r.kind == kind and r.usage)

    return {
        kind: TokenUsage(
            model=model,
            prompt_tokens=counted(kind, "prompt_tokens"),
            completion_tokens=counted(kind, "completion_tokens"),
        )
        for kind, model in (("proofread", "fake-proofread"), ("summary", "fake-summary"))
    }


async def test_permanent_refusal_fails_delivery_not_others(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: Any
) -> None:
    settings = settings_for(tmp_path, fake_llm, wecom)
    settings.wecom.webhook_url = None
    settings.wecom.allow_private_webhooks = True  # the tasks' own webhooks are on 127.0.0.1
    good = add_transcribed_task(store, "好", transcript_text(5, 3))
    bad = add_transcribed_task(store, "坏", transcript_text(5, 4))
    store.update_task(bad, webhook=wecom.webhook_url(""))  # no key: the receiver answers 93000
    store.update_task(good, webhook=wecom.webhook_url("group"))
    await run_mailbox(settings, store, [bad, good])
    bad_task, good_task = store.get_task(bad), store.get_task(good)
    assert bad_task is not None and bad_task.status is TaskStatus.FAILED
    assert bad_task.delivery.errcode == 93000
    assert good_task is not None and good_task.status is TaskStatus.DONE


CRASH_SCRIPT = """
import asyncio, sys
from actors.delivery.mailbox import Mailbox
from actors.storage.client import LocalStoreClient
from actors.storage.store import Store
from serve_app.settings import Settings

async def main():
    settings = Settings.model_validate_json(sys.argv[1])
    store = Store(settings.data_dir / "vidscribe.db")
    mailbox = Mailbox(settings, LocalStoreClient(store))
    mailbox.start()
    for task_id in sys.argv[2:]:
        await mailbox.enqueue(task_id)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_crash_mid_block_resumes_from_next_unsent_part(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: Any
) -> None:
    titles = ["长视频", "短视频"]
    task_ids = [add_transcribed_task(store, titles[0], transcript_text(1200, 5))]
    task_ids.append(add_transcribed_task(store, titles[1], transcript_text(20, 6)))
    settings = settings_for(tmp_path, fake_llm, wecom, attach_after_messages=0)  # many parts to be killed among
    wecom.delay_for("group", 0.3)  # slow enough to kill it mid-block
    process = start_mailbox_process(settings, task_ids)
    try:
        deadline = time.monotonic() + 60  # kill once the long block has some parts marked sent
        while time.monotonic() < deadline:
            found = store.find_block(task_ids[0], "content")
            if found is not None and found[1] >= 2:
                break
            await asyncio.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    sent_before = len(wecom.messages("group"))
    first_block_total = store.find_block(task_ids[0], "content")
    assert first_block_total is not None and 0 < first_block_total[1] < first_block_total[2], "kill was not mid-block"

    wecom.delay_for("group", 0)
    await run_mailbox(settings, store, task_ids, enqueue=False)  # recovery alone must finish the work

    messages = wecom.messages("group")
    assert len(messages) > sent_before
    counts = assert_contiguous_blocks(_without_one_repeat(messages), expected_titles=titles)
    assert counts
    repeats = len(messages) - len({m.content for m in messages})
    assert repeats <= 1, "only the part in flight at the kill may arrive twice"


async def test_crash_between_upload_and_file_message_uploads_again(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: WeComReceiver
) -> None:
    task_id = add_transcribed_task(store, "附件视频", transcript_text(1200, 9))
    settings = settings_for(tmp_path, fake_llm, wecom, attach_after_messages=2)
    wecom.delay_for("group", 1.0)  # the upload's answer (the media_id) comes too late for the killed sender
    process = start_mailbox_process(settings, [task_id])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(r.path == UPLOAD_PATH for r in wecom.requests):
            await asyncio.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert [m.msgtype for m in wecom.messages("group")] == ["markdown"], "kill was not between upload and file"
    found = store.find_block(task_id, "content")
    assert found is not None and found[1:] == (1, 2)  # the summary is marked sent, the file part is not

    wecom.delay_for("group", 0)
    await run_mailbox(settings, store, [task_id], enqueue=False)

    messages = wecom.messages("group")
    assert assert_contiguous_blocks(messages, expected_titles=["附件视频"]) == {"附件视频": {"总结": 1, "文件": 1}}
    assert [r.path for r in wecom.requests].count(UPLOAD_PATH) == 2  # uploaded again, sent once
    task = store.get_task(task_id)
    assert task is not None and task.status is TaskStatus.DONE
    assert messages[-1].text == task.proofread


def _without_one_repeat(messages: list[Any]) -> list[Any]:
    """Drop an immediate duplicate (the part in flight at the kill), keep everything else."""
    kept: list[Any] = []
    for message in messages:
        if kept and kept[-1].content == message.content:
            continue
        kept.append(message)
    return kept


def start_mailbox_process(settings: Settings, task_ids: list[str]) -> subprocess.Popen[bytes]:
    """A mailbox in a child process (to be killed) that enqueues `task_ids`."""
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, _reveal(settings), *task_ids],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )


def _reveal(settings: Settings) -> str:
    """Settings as JSON with secrets in clear, for the child process."""
    data = settings.model_dump(mode="json")
    data["wecom"]["webhook_url"] = settings.wecom.webhook_url.get_secret_value() if settings.wecom.webhook_url else None
    return json.dumps(data)


async def test_notices_are_switchable_and_summary_links_the_view_page(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: Any
) -> None:
    settings = settings_for(tmp_path, fake_llm, wecom)
    settings.notices.accepted = True
    settings.notices.failed = False
    settings.public_url = "https://vidscribe.example"
    shown = add_transcribed_task(store, "有链接", transcript_text(40, 7))
    failed = add_transcribed_task(store, "失败了", transcript_text(5, 8))
    store.fail_task(failed, "video_not_found", "the page is gone")
    mailbox = Mailbox(settings, LocalStoreClient(store))
    mailbox.start()
    try:
        await mailbox.notify_accepted(shown)
        await mailbox.notify_failed(failed)  # switched off: nothing is sent
        await mailbox.enqueue(shown)
        await wait_all(store, [shown])
    finally:
        await mailbox.close()
    contents = [m.content for m in wecom.messages("group")]
    assert contents[0].startswith("【状态】已接收")
    assert f"https://vidscribe.example/view/{shown}" in contents[0]
    assert contents[-1].startswith("【总结 ")
    assert contents[-1].endswith(f"[查看全文](https://vidscribe.example/view/{shown})")
    assert not any("失败了" in c or "the page is gone" in c for c in contents)
    assert_contiguous_blocks(wecom.messages("group"), expected_titles=["有链接"])


# ---- long texts as one file ---------------------------------------------------------------


async def test_long_proofread_arrives_as_summary_and_one_file(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: WeComReceiver
) -> None:
    """Over the default threshold (6 messages) the group gets the summary and the text as one file."""
    long_title, short_title = "长视频：第1集", "短视频"
    long_id = add_transcribed_task(store, long_title, transcript_text(1200, 11))
    short_id = add_transcribed_task(store, short_title, transcript_text(40, 12))
    settings = settings_for(tmp_path, fake_llm, wecom)
    settings.public_url = "https://vidscribe.example"
    assert settings.wecom.attach_after_messages == 6

    await run_mailbox(settings, store, [long_id, short_id])

    messages = wecom.messages("group")
    counts = assert_contiguous_blocks(messages, expected_titles=[long_title, short_title])
    assert counts == {long_title: {"总结": 1, "文件": 1}, short_title: {"校对": 1, "总结": 1}}
    long_task = store.get_task(long_id)
    assert long_task is not None and long_task.proofread is not None
    (file,) = [m for m in messages if m.msgtype == "file"]
    assert file.filename == "长视频_第1集-校对.txt"
    assert file.text == long_task.proofread
    (summary,) = [m.content for m in messages if m.content.startswith(f"【总结 1/1】{long_title}\n")]
    assert f"全文共 {len(long_task.proofread)} 字，见附件 {file.filename}" in summary
    assert summary.endswith(f"[查看全文](https://vidscribe.example/view/{long_id})")
    assert long_task.status is TaskStatus.DONE
    assert (long_task.delivery.state, long_task.delivery.parts_sent, long_task.delivery.parts_total) == ("sent", 2, 2)


@pytest.mark.parametrize("attach_after", [0, 50], ids=["attaching off", "under the threshold"])
async def test_no_file_when_attaching_is_off_or_the_text_fits(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: WeComReceiver, attach_after: int
) -> None:
    task_id = add_transcribed_task(store, "长视频", transcript_text(1200, 11))
    await run_mailbox(settings_for(tmp_path, fake_llm, wecom, attach_after_messages=attach_after), store, [task_id])
    messages = wecom.messages("group")
    counts = assert_contiguous_blocks(messages, expected_titles=["长视频"])
    assert counts["长视频"]["校对"] > 6 and "文件" not in counts["长视频"]
    proofread = "".join(strip_header(m.content) for m in messages if m.content.startswith("【校对 "))
    assert proofread == store.get_task(task_id).proofread  # type: ignore[union-attr]


async def test_long_raw_transcript_arrives_as_a_note_and_one_file(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: WeComReceiver
) -> None:
    task_id = add_transcribed_task(store, "原始长视频", transcript_text(600, 13))
    settings = settings_for(tmp_path, fake_llm, wecom, llm=False, attach_after_messages=2)
    await run_mailbox(settings, store, [task_id])
    messages = wecom.messages("group")
    task = store.get_task(task_id)
    assert task is not None and task.transcript is not None
    text = task.transcript.text
    notice, note, file = messages
    assert notice.content.startswith("【状态】未配置 LLM")
    assert note.content.startswith(f"【转录 1/1】原始长视频\n全文共 {len(text)} 字，见附件 原始长视频-转录.txt")
    assert (file.filename, file.text) == ("原始长视频-转录.txt", text)
    assert assert_contiguous_blocks(messages) == {"原始长视频": {"转录": 1, "文件": 1}}


async def test_a_robot_failing_past_the_deadline_parks_the_block_and_redeliver_sends_it_whole(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: Any, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = add_transcribed_task(store, "卡住的视频", transcript_text(120, 1))
    after = add_transcribed_task(store, "下一个视频", transcript_text(4, 2))
    settings = settings_for(tmp_path, fake_llm, wecom, attach_after_messages=0, max_attempts=2, park_after_s=1.5)
    mailbox = Mailbox(settings, LocalStoreClient(store))
    mailbox._lanes.outage_retry_s = 0.2
    wecom.refuse("group", -1)  # the robot answers "system busy" to everything
    mailbox.start()
    try:
        await mailbox.enqueue(stuck)
        while store.find_block(stuck, "content") is None:  # its block first in the lane
            await asyncio.sleep(0.02)
        await mailbox.enqueue(after)
        await wait_all(store, [stuck], timeout=30)
        wecom.refuse("group", None)  # the robot recovers; the lane has moved on to the next block
        await wait_all(store, [after], timeout=30)
        parked = store.get_task(stuck)
        assert parked is not None and parked.status is TaskStatus.FAILED
        assert parked.delivery.state == "failed" and parked.delivery.errcode == -1
        assert parked.error is not None and parked.error.code == "delivery_failed"
        assert_contiguous_blocks(wecom.messages("group"), expected_titles=["下一个视频"])

        assert store.redeliver(stuck)
        await wait_all(store, [stuck], timeout=60)
    finally:
        await mailbox.close()

    counts = assert_contiguous_blocks(wecom.messages("group"), expected_titles=["下一个视频", "卡住的视频"])
    redelivered = store.get_task(stuck)
    assert redelivered is not None and redelivered.status is TaskStatus.DONE, redelivered
    assert redelivered.delivery.state == "sent"
    assert sum(counts["卡住的视频"].values()) == redelivered.delivery.parts_total >= 3  # whole, from part 1
    outage_lines = [r for r in caplog.records if "parking the block" in r.getMessage() and stuck in r.getMessage()]
    assert len(outage_lines) == 1  # logged once, not on every retry


@pytest.mark.parametrize("msgtype", ["markdown", "markdown_v2", "text"])
async def test_hostile_titles_and_texts_arrive_as_words_and_whole(
    tmp_path: Path, store: Store, fake_llm: Any, wecom: Any, msgtype: str
) -> None:
    task_id = add_transcribed_task(store, HOSTILE_TITLE, hostile_transcript(60))
    settings = settings_for(tmp_path, fake_llm, wecom, msgtype=msgtype, attach_after_messages=0)

    await run_mailbox(settings, store, [task_id])

    messages = wecom.messages("group")
    assert {m.msgtype for m in messages} == {msgtype}
    assert len(messages) >= 4  # long enough to be split
    assert_seen_as_words_and_whole(messages, settings.public_url)
    task = store.get_task(task_id)
    assert task is not None and task.status is TaskStatus.DONE and task.delivery.state == "sent"
