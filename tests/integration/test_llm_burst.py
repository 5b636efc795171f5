"""The LLM step inside the mailbox, against a server that behaves like llama.cpp under load.

Real parts: the SQLite store, the openai client against the stand-in, the WeCom client
against the limit-enforcing receiver (as in test_mailbox.py). A burst of videos against a
server that serves one request at a time and refuses a third of them with 429 must end
with every video proofread, summarised and delivered; a summary that is nonsense is
left out with a warning and a status notice, and the block still goes out.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from actors.delivery.mailbox import Mailbox
from actors.domain.task import TaskOptions, TaskStatus
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo
from actors.llm.guards import summary_problem
from actors.storage.client import LocalStoreClient
from actors.storage.store import Store
from serve_app.settings import Settings
from tests.support.fake_llm import PROOFREAD_MODEL, SUMMARY_MODEL, FakeLLM
from tests.support.llm_text import chinese_transcript, full_width
from tests.support.wecom_receiver import WeComReceiver, assert_contiguous_blocks


@pytest.fixture
def store(tmp_path: Path) -> Any:
    db = Store(tmp_path / "vidscribe.db")
    yield db
    db.close()


def add_task(store: Store, title: str, text: str) -> str:
    task, _ = store.create_task(f"https://videos.example/{title}", TaskOptions())
    video = VideoInfo(url=task.url, platform="example", video_id=title, title=title, duration=60)
    transcript = Transcript(segments=[Segment(start=0, end=60, text=text)], language="zh", source=TranscriptSource.ASR)
    store.update_task(task.task_id, video=video, transcript=transcript, source=transcript.source)
    store.update_task(task.task_id, status=TaskStatus.TRANSCRIBING)
    return task.task_id


def settings_for(tmp_path: Path, fake: FakeLLM, wecom: WeComReceiver, **llm: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": fake.base_url,
        "proofread_model": PROOFREAD_MODEL,
        "summary_model": SUMMARY_MODEL,
        "timeout_s": 5,
        "retry_base_s": 0.02,
        "retry_max_s": 0.5,
        "max_retries": 8,
        "chunk_chars": 500,
        "summary_min_chars": 100,
        "concurrency_recover_s": 1.0,
    }
    values.update(llm)
    wecom.window_s = 1  # the real limit logic (20 per window), a shorter window
    return Settings(data_dir=tmp_path, llm=values, wecom=wecom.settings("group", attach_after_messages=0))


async def run_until_done(settings: Settings, store: Store, task_ids: list[str], timeout: float = 120) -> None:
    mailbox = Mailbox(settings, LocalStoreClient(store))
    mailbox.start()
    try:
        await asyncio.gather(*(mailbox.enqueue(task_id) for task_id in task_ids))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = [store.get_task(t) for t in task_ids]
            if all(t is not None and t.status.finished for t in tasks) and not store.lanes_with_pending():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"not done in {timeout}s: {[t.status for t in tasks if t is not None]}")
    finally:
        await mailbox.close()


async def test_a_burst_of_20_videos_against_a_one_at_a_time_server_refusing_a_third(
    tmp_path: Path, store: Store, fake_llm: FakeLLM, wecom: WeComReceiver
) -> None:
    fake_llm.serial = True
    fake_llm.latency = 0.01
    fake_llm.rate_limit_every = 3
    fake_llm.retry_after = 0.05
    titles = [f"视频{index:02d}" for index in range(20)]
    texts = [chinese_transcript(150 + 90 * index, seed=index) for index in range(20)]
    task_ids = [add_task(store, title, text) for title, text in zip(titles, texts, strict=True)]

    await run_until_done(settings_for(tmp_path, fake_llm, wecom), store, task_ids)

    requests = fake_llm.requests
    assert sum(r.status == 429 for r in requests) >= len(requests) // 3
    assert fake_llm.max_in_flight <= 4  # VIDSCRIBE_LLM__CONCURRENCY across all 20 videos
    counts = assert_contiguous_blocks(wecom.messages("group"), expected_titles=titles)
    for task_id, title, text in zip(task_ids, titles, texts, strict=True):
        task = store.get_task(task_id)
        assert task is not None and task.status is TaskStatus.DONE, task
        assert task.warnings == [], task.warnings  # no step failed, no chunk kept its raw text
        assert task.proofread == full_width(text)
        assert task.summary is not None and summary_problem(text, task.summary) is None
        assert counts[title]["总结"] >= 1
    assert not [m for m in wecom.messages("group") if m.content.startswith("【状态】")]


@pytest.mark.parametrize("step", ["echo", "nonsense", "english"])
async def test_a_nonsense_summary_is_left_out_with_a_warning_and_a_notice(
    tmp_path: Path, store: Store, fake_llm: FakeLLM, wecom: WeComReceiver, step: str
) -> None:
    text = chinese_transcript(600, seed=3)
    fake_llm.script("ok", step)  # the proofread (one chunk) is fine, the summary is not
    task_id = add_task(store, "胡言乱语", text)

    await run_until_done(settings_for(tmp_path, fake_llm, wecom, chunk_chars=1000), store, [task_id])

    messages = wecom.messages("group")
    counts = assert_contiguous_blocks(messages, expected_titles=["胡言乱语"])
    assert counts["胡言乱语"].get("总结", 0) == 0
    assert messages[0].content.startswith("【校对 1/")
    [notice] = [m.content for m in messages if m.content.startswith("【状态】")]
    assert "总结失败" in notice
    task = store.get_task(task_id)
    assert task is not None and task.status is TaskStatus.DONE
    assert task.summary is None
    assert any(w.startswith("总结失败：summary ") for w in task.warnings), task.warnings


async def test_a_chunk_that_fails_is_delivered_raw_inside_the_proofread_block(
    tmp_path: Path, store: Store, fake_llm: FakeLLM, wecom: WeComReceiver
) -> None:
    text = chinese_transcript(1400, seed=5)
    fake_llm.script("400")  # the first chunk is refused for good
    task_id = add_task(store, "半校对", text)

    await run_until_done(settings_for(tmp_path, fake_llm, wecom, concurrency=1), store, [task_id])

    messages = wecom.messages("group")
    assert_contiguous_blocks(messages, expected_titles=["半校对"])
    assert messages[0].content.startswith("【校对 1/")
    task = store.get_task(task_id)
    assert task is not None and task.status is TaskStatus.DONE
    assert task.proofread is not None and task.proofread != text and task.proofread != full_width(text)
    [warning] = task.warnings
    assert warning.startswith("proofread chunk 1/") and "HTTP 400" in warning
    assert store.cache_get("example", "半校对", "proofread") is None  # a later request tries again
