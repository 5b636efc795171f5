"""The Store on a real SQLite file: tasks, leases, cache layers, outbox, durability."""

from __future__ import annotations

import base64
import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydantic
import pytest

from actors.domain.priority import Priority
from actors.domain.task import Delivery, Submission, TaskError, TaskOptions, TaskRecord, TaskStatus
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo
from actors.storage.cache import normalize_url
from actors.storage.database import NewerStore
from actors.storage.schema import SCHEMA_VERSION
from actors.storage.store import Store
from actors.storage.tasks import QueueFull, new_task_id

LANE_A = "http://127.0.0.1:9/cgi-bin/webhook/send?key=group-a"
LANE_B = "http://127.0.0.1:9/cgi-bin/webhook/send?key=group-b"
PRE_LLM = (TaskStatus.QUEUED, TaskStatus.RESOLVING, TaskStatus.DOWNLOADING, TaskStatus.TRANSCRIBING)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "vidscribe.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(db_path) as opened:
        yield opened


def video(video_id: str = "page-1", platform: str = "html5", title: str = "第一集 (1)") -> VideoInfo:
    return VideoInfo(url=f"http://site.test/v/{video_id}", platform=platform, video_id=video_id, title=title)


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


# -- tasks ------------------------------------------------------------------------------
def test_round_trip_with_nested_models(store: Store, db_path: Path) -> None:
    options = TaskOptions(proofread=False, language="zh", priority=Priority.HIGH)
    task, created = store.create_task("http://site.test/v/1", options, client="ios", webhook=LANE_A)
    assert created
    assert (task.status, task.priority, task.attempts, task.progress) == (TaskStatus.QUEUED, Priority.HIGH, 0, 0.0)
    transcript = Transcript(segments=[Segment(start=0.0, end=1.5, text="大家好")], language="zh", duration=1.5)
    before = task.updated_at
    updated = store.update_task(
        task.task_id,
        status=TaskStatus.TRANSCRIBING,
        progress=0.5,
        progress_detail={"seconds": 30.0, "duration": 60.0},
        video=video(),
        transcript=transcript,
        source=TranscriptSource.ASR,
        delivery={"state": "sending", "parts_total": 3},  # a dict is validated into a Delivery
    )
    assert updated.delivery == Delivery(state="sending", parts_total=3)
    assert updated.updated_at >= before

    store.close()
    with Store(db_path) as reopened:
        got = reopened.get_task(task.task_id)
    assert got == updated
    assert got is not None and got.webhook == LANE_A and got.options == options
    assert got.transcript is not None and got.transcript.text == "大家好"
    # JSON for the API never shows the webhook (its key is a secret), nor does the repr;
    # a pickle (how Ray moves records) keeps it.
    dumped = json.loads(got.model_dump_json())
    assert "webhook" not in dumped and dumped["video"]["title"] == "第一集 (1)"
    assert "group-a" not in repr(got)
    assert pickle.loads(pickle.dumps(got)).webhook == LANE_A


def test_update_task_refuses_unknown_fields_and_tasks(store: Store) -> None:
    task, _ = store.create_task("http://site.test/v/1", TaskOptions())
    with pytest.raises(TypeError):
        store.update_task(task.task_id, colour="red")
    with pytest.raises(TypeError):
        store.update_task(task.task_id, task_id="other")
    with pytest.raises(pydantic.ValidationError):
        store.update_task(task.task_id, status="sleeping")
    with pytest.raises(KeyError):
        store.update_task("no-such-task", progress=0.1)
    assert store.get_task("no-such-task") is None
    assert store.get_task(task.task_id) == task  # the failed updates changed nothing


def test_warnings_and_failure(store: Store) -> None:
    task, _ = store.create_task("http://site.test/v/1", TaskOptions())
    store.add_warning(task.task_id, "chunk 2 kept its original text")
    store.add_warning(task.task_id, "chunk 2 kept its original text")  # a retried step
    store.add_warning(task.task_id, "summary skipped")
    failed = store.fail_task(task.task_id, "download_failed", "HTTP 503 from the site")
    assert failed.status is TaskStatus.FAILED
    assert failed.error == TaskError(code="download_failed", message="HTTP 503 from the site")
    assert failed.warnings == ["chunk 2 kept its original text", "summary skipped"]
    assert store.get_task(task.task_id) == failed


def test_create_is_idempotent_while_unfinished(store: Store) -> None:
    first, created = store.create_task("https://Site.TEST:443/v/1?utm_source=share#t=30", TaskOptions())
    assert created
    again, created = store.create_task("  https://site.test/v/1  ", TaskOptions(summary=False))
    assert not created and again.task_id == first.task_id
    other_client, created = store.create_task("https://site.test/v/1", TaskOptions(), client="bot")
    assert created and other_client.task_id != first.task_id
    other_video, created = store.create_task("https://site.test/v/2", TaskOptions())
    assert created and other_video.task_id != first.task_id
    assert store.count_unfinished() == 3

    store.update_task(first.task_id, status=TaskStatus.DONE)
    fresh, created = store.create_task("https://site.test/v/1", TaskOptions())
    assert created and fresh.task_id != first.task_id
    store.fail_task(fresh.task_id, "no_media", "nothing to play")
    latest, created = store.create_task("https://site.test/v/1", TaskOptions())
    assert created and latest.task_id not in (first.task_id, fresh.task_id)
    assert store.count_unfinished() == 3


def test_concurrent_creates_of_one_link_make_one_task(store: Store) -> None:
    results: list[tuple[TaskRecord, bool]] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.create_task("http://site.test/v/9", TaskOptions())))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(created for _, created in results) == 1
    assert len({task.task_id for task, _ in results}) == 1


def test_a_batch_of_submissions_is_one_transaction_with_per_item_answers(store: Store) -> None:
    store.create_task("https://site.test/v/0", TaskOptions())
    batch = [
        Submission(url="https://site.test/v/1", options=TaskOptions()),
        Submission(url="https://SITE.test/v/1#again", options=TaskOptions()),  # same link, same batch
        Submission(url="https://site.test/v/0", options=TaskOptions()),  # already waiting
        Submission(url="https://site.test/v/2", options=TaskOptions(), client="bot"),
        Submission(url="https://site.test/v/3", options=TaskOptions()),  # over the bound
    ]
    first, twin, waiting, bot, full = store.create_tasks(batch, max_unfinished=3)
    assert not isinstance(first, QueueFull) and first[1]
    assert not isinstance(twin, QueueFull) and twin == (first[0], False)
    assert not isinstance(waiting, QueueFull) and not waiting[1]
    assert not isinstance(bot, QueueFull) and bot[1] and bot[0].client == "bot"
    assert isinstance(full, QueueFull) and full.code == "queue_full"
    assert store.count_unfinished() == 3
    with pytest.raises(QueueFull):
        store.create_task("https://site.test/v/4", TaskOptions(), max_unfinished=3)


def test_normalize_url_keeps_what_identifies_the_page() -> None:
    assert normalize_url("HTTP://Example.COM:80/Path?b=2&a=1#frag") == "http://example.com/Path?b=2&a=1"
    assert normalize_url("https://example.com") == "https://example.com/"
    assert normalize_url("http://example.com:8080/x") == "http://example.com:8080/x"


def test_task_ids_are_unguessable_and_distinct(store: Store) -> None:
    ids = [store.create_task(f"http://site.test/v/{i}", TaskOptions())[0].task_id for i in range(300)]
    assert len(set(ids)) == len(ids)
    for task_id in ids:
        assert len(base64.urlsafe_b64decode(task_id + "==")) >= 16  # >= 128 random bits
        assert set(task_id) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_task_ids_never_look_like_command_line_options() -> None:
    # One token in 64 starts with "-": 2000 draws would all but surely show one.
    assert not any(new_task_id().startswith("-") for _ in range(2000))


def test_unfinished_and_list(store: Store) -> None:
    tasks = [store.create_task(f"http://site.test/v/{i}", TaskOptions())[0] for i in range(5)]
    store.update_task(tasks[1].task_id, status=TaskStatus.PROOFREADING)
    store.update_task(tasks[2].task_id, status=TaskStatus.DONE, video=video(title="猫的一天"))
    assert [t.task_id for t in store.unfinished_tasks()] == [tasks[i].task_id for i in (0, 1, 3, 4)]
    only_llm = store.unfinished_tasks([TaskStatus.PROOFREADING, TaskStatus.SUMMARIZING])
    assert [t.task_id for t in only_llm] == [tasks[1].task_id]
    assert store.count_unfinished() == 4

    assert [t.task_id for t in store.list_tasks(limit=2)] == [tasks[4].task_id, tasks[3].task_id]
    assert [t.task_id for t in store.list_tasks(limit=2, offset=3)] == [tasks[1].task_id, tasks[0].task_id]
    assert [t.task_id for t in store.list_tasks(status=TaskStatus.DONE)] == [tasks[2].task_id]
    assert [t.task_id for t in store.list_tasks(query="猫")] == [tasks[2].task_id]
    assert [t.task_id for t in store.list_tasks(query="v/3")] == [tasks[3].task_id]
    assert [t.task_id for t in store.list_tasks(query=tasks[0].task_id)] == [tasks[0].task_id]
    assert store.list_tasks(query="%") == []  # LIKE wildcards are literal
    assert store.list_tasks(client="bot") == []


# -- leases ------------------------------------------------------------------------------
def test_leases(store: Store) -> None:
    task, _ = store.create_task("http://site.test/v/1", TaskOptions())
    claimed = store.claim_task(task.task_id, "worker-a", 30.0)
    assert claimed is not None and claimed.attempts == 1
    assert store.claim_task(task.task_id, "worker-b", 30.0) is None  # held by a live owner
    again = store.claim_task(task.task_id, "worker-a", 30.0)  # ours already: not a new claim
    assert again is not None and again.attempts == 1
    assert store.stale_tasks(PRE_LLM, 0) == []

    assert store.claim_task(task.task_id, "worker-a", 0.2) is not None  # a short lease, then worker-a "dies"
    wait_until(lambda: store.claim_task(task.task_id, "worker-b", 30.0) is not None)
    current = store.get_task(task.task_id)
    assert current is not None and current.attempts == 2
    assert not store.renew_lease(task.task_id, "worker-a", 30.0)  # worker-a lost it
    assert store.renew_lease(task.task_id, "worker-b", 30.0)

    store.release_task(task.task_id, "worker-a")  # not the owner: no effect
    assert store.claim_task(task.task_id, "worker-c", 30.0) is None
    store.release_task(task.task_id, "worker-b")
    assert [t.task_id for t in store.stale_tasks(PRE_LLM, 0)] == [task.task_id]
    assert store.stale_tasks([TaskStatus.PROOFREADING], 0) == []
    reclaimed = store.claim_task(task.task_id, "worker-c", 30.0)
    assert reclaimed is not None and reclaimed.attempts == 3

    store.update_task(task.task_id, status=TaskStatus.DONE)
    assert not store.renew_lease(task.task_id, "worker-c", 30.0)
    store.release_task(task.task_id, "worker-c")
    assert store.claim_task(task.task_id, "worker-d", 30.0) is None  # finished
    assert store.stale_tasks(PRE_LLM, 0) == []


def test_claim_next_takes_the_most_urgent(store: Store) -> None:
    low, _ = store.create_task("http://site.test/v/1", TaskOptions(priority=Priority.LOW))
    normal, _ = store.create_task("http://site.test/v/2", TaskOptions())
    high, _ = store.create_task("http://site.test/v/3", TaskOptions(priority=Priority.HIGH))
    later, _ = store.create_task("http://site.test/v/4", TaskOptions())
    store.update_task(later.task_id, status=TaskStatus.PROOFREADING)  # past the transcriber
    order = [store.claim_next(f"w{i}", 30.0, PRE_LLM) for i in range(4)]
    assert [t.task_id if t else None for t in order] == [high.task_id, normal.task_id, low.task_id, None]


def test_stale_tasks_hands_out_one_token_per_idle_period(store: Store) -> None:
    waiting, _ = store.create_task("http://site.test/v/1", TaskOptions())
    held, _ = store.create_task("http://site.test/v/2", TaskOptions())
    store.claim_task(held.task_id, "worker", 30.0)
    assert [t.task_id for t in store.stale_tasks(PRE_LLM, 0.0)] == [waiting.task_id]
    assert store.stale_tasks(PRE_LLM, 60.0) == []  # just dispatched
    wait_until(lambda: [t.task_id for t in store.stale_tasks(PRE_LLM, 0.05)] == [waiting.task_id])


# -- cache --------------------------------------------------------------------------------
def test_cache_layers_are_keyed_by_video_not_url(store: Store) -> None:
    short, _ = store.create_task("http://site.test/s/xyz", TaskOptions())
    long, _ = store.create_task("http://site.test/v/page-1?from=share", TaskOptions())
    transcript = Transcript(segments=[Segment(start=0, end=2, text="你好，世界")], source=TranscriptSource.SUBTITLES)
    # Both links resolve to the same video: what one stored, the other finds.
    store.update_task(short.task_id, video=video())
    resolved = store.get_task(short.task_id)
    assert resolved is not None and resolved.video is not None
    store.cache_put(resolved.video.platform, resolved.video.video_id, "transcript", transcript)
    store.cache_put("html5", "page-1", "summary", "一段总结")
    store.update_task(long.task_id, video=video(platform="HTML5"))

    assert Transcript.model_validate(store.cache_get("HTML5", "page-1", "transcript")) == transcript
    assert store.cache_get("html5", "page-1", "summary") == "一段总结"
    assert store.cache_get("html5", "page-1", "proofread") is None
    assert store.cache_get("html5", "page-2", "summary") is None
    store.cache_put("html5", "page-1", "summary", {"text": "新的总结"})  # replaces
    assert store.cache_get("html5", "page-1", "summary") == {"text": "新的总结"}
    with pytest.raises(ValueError, match="layer"):
        store.cache_get("html5", "page-1", "thumbnails")


# -- outbox --------------------------------------------------------------------------------
def parts(name: str, n: int) -> list[tuple[str, str]]:
    return [(f"【校对 {i + 1}/{n}】{name}", "markdown") for i in range(n)]


def test_outbox_sends_parts_in_order_and_marks_them(store: Store) -> None:
    block = store.add_block("t1", LANE_A, "content", parts("A", 3))
    assert store.lanes_with_pending() == [LANE_A]
    nxt = store.next_block(LANE_A)
    assert nxt is not None and nxt.block_id == block and nxt.task_id == "t1" and nxt.key == "content"
    assert [(p.seq, p.content, p.msgtype) for p in nxt.parts] == [(i, c, m) for i, (c, m) in enumerate(parts("A", 3))]
    store.mark_part_sent(block, 0)
    store.mark_part_sent(block, 0)  # a retry after a lost reply counts once
    assert store.block_progress(block) == (1, 3)
    nxt = store.next_block(LANE_A)
    assert nxt is not None and [p.seq for p in nxt.parts] == [1, 2]
    store.mark_part_sent(block, 1)
    store.mark_part_sent(block, 2)
    assert store.block_progress(block) == (3, 3)
    assert store.find_block("t1", "content") == (block, 3, 3)
    assert store.next_block(LANE_A) is None
    assert store.lanes_with_pending() == []
    sent = store.task_blocks("t1")[0].parts
    assert all(p.sent_at is not None for p in sent)
    with pytest.raises(KeyError):
        store.mark_part_sent(block, 3)
    with pytest.raises(KeyError):
        store.block_progress(block + 100)


def test_in_progress_block_comes_first_after_restart(store: Store, db_path: Path) -> None:
    older = store.add_block("t1", LANE_A, "content", parts("older", 2))
    started = store.add_block("t2", LANE_A, "content", parts("started", 3))
    store.mark_part_sent(started, 0)
    store.close()  # "restart"

    with Store(db_path) as reopened:
        nxt = reopened.next_block(LANE_A)
        assert nxt is not None and nxt.block_id == started
        assert [p.content for p in nxt.parts] == [c for c, _ in parts("started", 3)[1:]]
        for part in nxt.parts:
            reopened.mark_part_sent(started, part.seq)
        nxt = reopened.next_block(LANE_A)
        assert nxt is not None and nxt.block_id == older and len(nxt.parts) == 2


def test_readding_a_block_changes_nothing(store: Store) -> None:
    first = store.add_block("t1", LANE_A, "content", parts("A", 2))
    store.mark_part_sent(first, 0)
    again = store.add_block("t1", LANE_A, "content", parts("A-regenerated", 5))
    assert again == first
    assert store.block_progress(first) == (1, 2)
    nxt = store.next_block(LANE_A)
    assert nxt is not None and [p.content for p in nxt.parts] == [parts("A", 2)[1][0]]
    notice = store.add_block("t1", LANE_A, "failed", [("【状态】处理失败", "text")])
    assert notice != first  # another key of the same task is another block
    with pytest.raises(ValueError, match="part"):
        store.add_block("t1", LANE_A, "empty", [])


def test_lanes_are_independent(store: Store) -> None:
    a = store.add_block("t1", LANE_A, "content", parts("A", 2))
    b = store.add_block("t2", LANE_B, "content", parts("B", 1))
    a2 = store.add_block("t3", LANE_A, "content", parts("A2", 1))
    assert store.lanes_with_pending() == [LANE_A, LANE_B]
    next_b = store.next_block(LANE_B)
    assert next_b is not None and next_b.block_id == b
    store.mark_part_sent(b, 0)  # group B finishes while group A has not started
    assert store.lanes_with_pending() == [LANE_A]
    next_a = store.next_block(LANE_A)
    assert next_a is not None and next_a.block_id == a
    store.abandon_block(a, 93000, "invalid webhook url")
    next_a = store.next_block(LANE_A)
    assert next_a is not None and next_a.block_id == a2  # an abandoned block is never sent again
    assert store.block_progress(a) == (0, 2)


def test_blocks_carry_the_task_priority(store: Store) -> None:
    task, _ = store.create_task("http://site.test/v/1", TaskOptions(priority=Priority.HIGH))
    store.add_block(task.task_id, LANE_A, "content", parts("A", 1))
    nxt = store.next_block(LANE_A)
    assert nxt is not None and nxt.priority is Priority.HIGH


# -- durability, schema, concurrency, scale --------------------------------------------------
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from actors.storage.store import Store

    store = Store(Path(sys.argv[1]))
    block = store.add_block("t1", "lane", "content", [(f"part {i}", "text") for i in range(50)])
    for seq in range(50):
        store.mark_part_sent(block, seq)
        print(seq, flush=True)  # only after mark_part_sent returned
        time.sleep(0.002)
    time.sleep(60)
    """
)


def test_send_marks_survive_sigkill(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert child.stdout is not None
        reported = [int(child.stdout.readline()) for _ in range(5)]
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert reported == [0, 1, 2, 3, 4]

    with Store(db_path) as reopened:
        _, sent, total = reopened.find_block("t1", "content") or (0, 0, 0)
        assert total == 50 and sent >= 5  # every mark reported before the kill is there
        nxt = reopened.next_block("lane")
        assert nxt is not None and [p.seq for p in nxt.parts] == list(range(sent, 50))


def test_schema_version_is_recorded_and_checked(db_path: Path) -> None:
    Store(db_path).close()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(NewerStore, match="schema 99"):
        Store(db_path)


def test_closed_store_refuses_calls(db_path: Path) -> None:
    store = Store(db_path)
    store.close()
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.count_unfinished()


def test_threads_and_a_second_process_handle_never_see_locked(db_path: Path) -> None:
    main, other = Store(db_path), Store(db_path)  # two connections: in-process lock + busy timeout
    tasks = [main.create_task(f"http://site.test/v/{i}", TaskOptions())[0].task_id for i in range(8)]
    blocks = [main.add_block(task_id, LANE_A, "content", parts(task_id, 40)) for task_id in tasks]
    errors: list[BaseException] = []

    def hammer(index: int) -> None:
        store = main if index % 2 else other
        try:
            for seq in range(40):
                store.update_task(tasks[index], progress=seq / 40, progress_detail={"seconds": seq})
                store.mark_part_sent(blocks[index], seq)
                store.add_warning(tasks[(index + 1) % 8], f"w{seq % 3}")
                store.get_task(tasks[(index + 3) % 8])
                store.next_block(LANE_A)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        assert all(main.block_progress(block) == (40, 40) for block in blocks)
        final = other.get_task(tasks[0])
        assert final is not None and final.progress == pytest.approx(39 / 40)
        assert final.warnings == ["w0", "w1", "w2"]
    finally:
        main.close()
        other.close()


def test_listing_ten_thousand_tasks_stays_fast(db_path: Path) -> None:
    with Store(db_path, durable=False) as store:
        started = time.perf_counter()
        for i in range(10_000):
            task, _ = store.create_task(f"http://site.test/v/{i}", TaskOptions(), client="bulk" if i % 2 else None)
            if i % 10 == 0:
                store.update_task(task.task_id, status=TaskStatus.DONE, video=video(str(i), title=f"视频 {i}"))
        filled = time.perf_counter() - started
        started = time.perf_counter()
        newest = store.list_tasks(limit=50)
        page = store.list_tasks(limit=50, offset=5000, client="bulk")
        done = store.list_tasks(status=TaskStatus.DONE, limit=50)
        searched = store.list_tasks(query="视频 999")
        count = store.count_unfinished()
        listed = time.perf_counter() - started
        print(f"\n10k tasks: filled in {filled:.2f}s; 3 pages + search + count in {listed * 1000:.1f} ms")
    assert len(newest) == 50 and newest[0].url.endswith("/v/9999")
    assert len(page) == 0  # 5000 bulk tasks: offset 5000 is past the end
    assert len(done) == 50 and all(t.status is TaskStatus.DONE for t in done)
    assert [t.url for t in searched] == ["http://site.test/v/9990"]
    assert count == 9000
