"""Mailbox vs the serial design it replaces: makespan ratio and interleavings.

8 videos finish transcription at once; the fake LLM answers in 1-2 s per call. The
serial design holds one lock around LLM + send per video; the mailbox proofreads and
summarises several videos at once and keeps delivery serial per group. Both run
against the same local WeCom receiver (its 20-per-minute limit enforced, one robot
key each), in this one process, side by side.

    .venv/bin/python -m bench.llm_sender_makespan
"""

from __future__ import annotations

import asyncio
import random
import re
import tempfile
import time
from pathlib import Path

from actors.delivery.blocks import content_parts
from actors.delivery.mailbox import Mailbox
from actors.delivery.wecom import WeComClient
from actors.domain.task import TaskOptions, TaskStatus
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo
from actors.llm.client import LLMClient
from actors.storage.client import LocalStoreClient
from actors.storage.store import Store
from serve_app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.wecom_receiver import WeComReceiver

VIDEOS = 8  # 2 messages each: 16, under the 20-per-minute limit, so the LLM is what is measured
SENTENCES = ["今天我们来聊一聊视频转录。", "这个系统会先下载音频！", "然后识别语音并校对文字？", "最后把总结发到群里。"]
HEADER = re.compile(r"【(?:校对|总结|转录) \d+/\d+】(.*)")


def make_tasks(store: Store) -> list[str]:
    rng = random.Random(7)
    task_ids = []
    for index in range(VIDEOS):
        text = "".join(rng.choice(SENTENCES) for _ in range(rng.randint(10, 60)))
        task, _ = store.create_task(f"https://bench.example/{index}", TaskOptions())
        video = VideoInfo(url=task.url, platform="bench", video_id=str(index), title=f"视频{index}")
        transcript = Transcript(segments=[Segment(start=0, end=1, text=text)], source=TranscriptSource.ASR)
        store.update_task(task.task_id, video=video, transcript=transcript, status=TaskStatus.TRANSCRIBING)
        task_ids.append(task.task_id)
    return task_ids


def interleavings(contents: list[str]) -> int:
    """How many times a video's messages resume after another video's: 0 when contiguous."""
    runs: list[str] = []
    for content in contents:
        match = HEADER.match(content)
        if match and (not runs or runs[-1] != match.group(1)):
            runs.append(match.group(1))
    return len(runs) - len(set(runs))


async def run_serial(settings: Settings, store: Store, task_ids: list[str]) -> None:
    llm, wecom, lock = (
        LLMClient(settings.llm),
        WeComClient(settings.wecom, trusted_webhooks=settings.operator_webhooks()),
        asyncio.Lock(),
    )
    lane = settings.wecom.webhook_url.get_secret_value()  # type: ignore[union-attr]

    async def one(task_id: str) -> None:
        task = store.get_task(task_id)
        assert task is not None and task.transcript is not None and task.video is not None
        async with lock:  # the old design: the whole LLM + send of a video under one lock
            proofread = (await llm.proofread(task.transcript.text, task.video)).text
            summary = await llm.summarize(proofread, task.video)
            for content, msgtype in content_parts(task, proofread, summary, settings.wecom.msgtype):
                await wecom.send(lane, content, msgtype)

    await asyncio.gather(*(one(task_id) for task_id in task_ids))
    await llm.aclose()
    await wecom.aclose()


async def run_mailbox(settings: Settings, store: Store, task_ids: list[str]) -> None:
    mailbox = Mailbox(settings, LocalStoreClient(store))
    mailbox.start()
    await asyncio.gather(*(mailbox.enqueue(task_id) for task_id in task_ids))
    while not all(store.get_task(t).status.finished for t in task_ids):  # type: ignore[union-attr]
        await asyncio.sleep(0.05)
    await mailbox.close()


async def measure(name: str, runner, fake: FakeLLM, wecom: WeComReceiver) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=tmp,
            llm=fake.settings(proofread_model="fake-proofread", summary_model="fake-summary", chunk_chars=100_000),
            wecom=wecom.settings(name),
        )
        store = Store(Path(tmp) / "bench.db")
        task_ids = make_tasks(store)
        started = time.perf_counter()
        await runner(settings, store, task_ids)
        elapsed = time.perf_counter() - started
        store.close()
    contents = [m.content for m in wecom.messages(name)]
    return elapsed, interleavings(contents)


async def main() -> None:
    with FakeLLM() as fake, WeComReceiver() as wecom:
        fake.latency = (1.0, 2.0)
        serial, serial_mixed = await measure("serial", run_serial, fake, wecom)
        mailbox, mailbox_mixed = await measure("mailbox", run_mailbox, fake, wecom)
    print(f"videos: {VIDEOS}, fake LLM latency 1-2 s per call, default settings (generation concurrency 4)")
    print(f"serial (one lock around LLM + send): {serial:6.2f} s, interleavings {serial_mixed}")
    print(f"mailbox (this design):               {mailbox:6.2f} s, interleavings {mailbox_mixed}")
    print(f"makespan ratio mailbox/serial: {mailbox / serial:.3f} (goal <= 0.35); interleavings: {mailbox_mixed}")


if __name__ == "__main__":
    asyncio.run(main())
