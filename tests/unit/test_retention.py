"""Retention on a real SQLite file, with a controllable clock: old tasks and their blocks go,
recent ones and unsent blocks stay, the cache keeps its most recently used layers within its
budget, pruning runs in batches that let submissions through, and the file shrinks."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from actors.domain.outbox import CONTENT_KEY
from actors.domain.task import TaskOptions, TaskStatus
from actors.domain.video import Segment, Transcript
from actors.storage.cache import TOUCH_EVERY_S
from actors.storage.client import LocalStoreClient
from actors.storage.retention import DAY_S, Pruner, PruneReport
from actors.storage.settings import RetentionSettings
from actors.storage.store import Store
from serve_app.http.app import create_app
from serve_app.settings import Settings
from tests.support.local_gateway import RecordingWorkQueue

LANE = "http://127.0.0.1:9/cgi-bin/webhook/send?key=group-a"
TOKEN = "retention-test-token"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "vidscribe.db", durable=False) as opened:
        yield opened


def no_pause() -> None:
    pass


def pruner(
    store: Store, clock: Callable[[], float], pause: Callable[[], None] = no_pause, **settings: float
) -> tuple[Pruner, list[PruneReport]]:
    """A Pruner with these settings (cache limit off unless given) and the batches it reports."""
    batches: list[PruneReport] = []
    policy = RetentionSettings(**{"cache_mb": 0, **settings})
    return Pruner(store, policy, clock=clock, pause=pause, on_batch=batches.append), batches


def raw(store: Store, sql: str, *params: object) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(store.path)) as db:
        return db.execute(sql, params).fetchall()


def finished_task(store: Store, url: str, status: TaskStatus = TaskStatus.DONE, *, blocks: int = 1) -> str:
    """A finished task with `blocks` fully sent blocks of two parts."""
    task, _ = store.create_task(url, TaskOptions(), webhook=LANE)
    for key in [CONTENT_KEY, "failed"][:blocks]:
        block = store.add_block(task.task_id, LANE, key, [("one", "text"), ("two", "text")])
        store.mark_part_sent(block, 0)
        store.mark_part_sent(block, 1)
    store.update_task(task.task_id, status=status)
    return task.task_id


# -- tasks ------------------------------------------------------------------------------


def test_old_finished_tasks_go_with_their_blocks_and_the_rest_stays(store: Store) -> None:
    now = time.time()
    old_done = finished_task(store, "https://v.example/done")
    old_failed = finished_task(store, "https://v.example/failed", TaskStatus.FAILED, blocks=2)
    recent = finished_task(store, "https://v.example/recent")
    store.update_task(recent, updated_at=now + 20 * DAY_S)  # finished 10 days before the prune
    waiting, _ = store.create_task("https://v.example/waiting", TaskOptions())  # old, but not finished
    unsent, _ = store.create_task("https://v.example/unsent", TaskOptions(), webhook=LANE)
    notice = store.add_block(unsent.task_id, LANE, "failed", [("【状态】失败", "text")])
    store.fail_task(unsent.task_id, "download_error", "gone")  # finished, its notice not sent yet
    pruned_blocks = [b.block_id for t in (old_done, old_failed) for b in store.task_blocks(t)]

    run, batches = pruner(store, Clock(now + 30 * DAY_S + 60), task_days=30)
    report = run.run_once()

    assert (report.tasks, report.outbox_blocks) == (2, 3)
    assert store.get_task(old_done) is None and store.get_task(old_failed) is None
    assert store.task_blocks(old_done) == [] and store.task_blocks(old_failed) == []
    marks = ",".join("?" * len(pruned_blocks))
    assert raw(store, f"SELECT COUNT(*) FROM outbox_parts WHERE block_id IN ({marks})", *pruned_blocks) == [(0,)]
    for kept in (recent, waiting.task_id, unsent.task_id):
        assert store.get_task(kept) is not None
    assert [b.block_id for b in store.task_blocks(unsent.task_id)] == [notice]
    assert store.next_block(LANE) is not None  # the notice still goes out
    assert sum(b.tasks for b in batches) == 2  # what the metric counts

    store.mark_part_sent(notice, 0)  # sent at last: the next run takes it
    assert run.run_once().tasks == 1
    assert store.get_task(unsent.task_id) is None


def test_zero_days_keeps_tasks_forever(store: Store) -> None:
    task_id = finished_task(store, "https://v.example/done")
    run, _ = pruner(store, Clock(time.time() + 3650 * DAY_S), task_days=0)
    assert run.run_once().tasks == 0
    assert store.get_task(task_id) is not None


def test_pruning_is_done_in_batches_of_the_configured_size(store: Store) -> None:
    for i in range(25):
        finished_task(store, f"https://v.example/{i}")
    run, batches = pruner(store, Clock(time.time() + 31 * DAY_S), task_days=30, batch_size=10)
    report = run.run_once()
    assert [b.tasks for b in batches] == [10, 10, 5]
    assert (report.tasks, report.batches) == (25, 3)


def test_a_burst_of_submissions_during_a_prune_is_answered_between_batches(tmp_path: Path) -> None:
    # If a prune held the Store's lock from its first batch to its last, these submissions
    # could not finish inside the pause after the second batch: the burst would time out.
    with Store(tmp_path / "vidscribe.db", durable=False) as store:
        store.create_tasks([])  # warm
        for i in range(120):
            finished_task(store, f"https://v.example/old/{i}", blocks=0)
        batches_done: list[int] = []
        answered_after: list[int] = []
        errors: list[BaseException] = []

        def submit(i: int) -> None:
            try:
                task, created = store.create_task(f"https://v.example/new/{i}", TaskOptions(), max_unfinished=100)
                assert created and task.status is TaskStatus.QUEUED
                answered_after.append(len(batches_done))
            except BaseException as error:
                errors.append(error)

        def pause() -> None:
            batches_done.append(1)
            if len(batches_done) != 2:
                return
            burst = [threading.Thread(target=submit, args=(i,)) for i in range(20)]
            for thread in burst:
                thread.start()
            for thread in burst:
                thread.join(timeout=30)
            assert not any(thread.is_alive() for thread in burst), "submissions waited for the prune"

        run, _ = pruner(store, Clock(time.time() + 31 * DAY_S), pause, task_days=30, batch_size=10)
        report = run.run_once()

        assert errors == []
        assert answered_after == [2] * 20  # every answer landed between batch 2 and batch 3
        assert report.batches == 12 and report.tasks == 120  # and the prune went on after them
        assert store.count_unfinished() == 20


# -- cache ------------------------------------------------------------------------------


def test_the_cache_keeps_its_most_recently_used_layers_within_its_budget(tmp_path: Path) -> None:
    clock = Clock(1_000_000.0)
    layer = "x" * 99_998  # 100,000 bytes as JSON
    with Store(tmp_path / "vidscribe.db", durable=False, clock=clock) as store:
        for i in range(10):
            clock.now += 600
            store.cache_put("html5", f"page-{i}", "transcript", layer)
            store.remember_alias(f"https://v.example/{i}", "html5", f"page-{i}")
        clock.now += 600
        assert store.cache_get("html5", "page-0", "transcript") == layer  # the oldest, but popular

        run, batches = pruner(store, clock, cache_mb=0.5, task_days=0, batch_size=2)  # 5 of 100,000 fit
        report = run.run_once()

        kept = {i for i in range(10) if store.cache_get("html5", f"page-{i}", "transcript") is not None}
        assert kept == {0, 6, 7, 8, 9}
        assert (report.cache_layers, report.cache_bytes) == (5, 500_000)
        assert [b.cache_layers for b in batches] == [2, 2, 1]
        assert raw(store, "SELECT SUM(bytes) FROM cache_usage") == [(500_000,)]
        aliases = {video for (video,) in raw(store, "SELECT video_id FROM aliases")}
        assert aliases == {f"page-{i}" for i in kept}  # an evicted video's links are forgotten too
        assert run.run_once().cache_layers == 0  # within budget: nothing more


def test_a_read_marks_a_layer_used_at_most_once_a_minute(tmp_path: Path) -> None:
    clock = Clock(1_000_000.0)
    with Store(tmp_path / "vidscribe.db", durable=False, clock=clock) as store:
        store.cache_put("html5", "page-1", "summary", "总结")

        def used_at() -> object:
            return raw(store, "SELECT used_at FROM cache_usage WHERE video_id = 'page-1'")[0][0]

        clock.now += TOUCH_EVERY_S / 2
        store.cache_get("html5", "page-1", "summary")
        assert used_at() == 1_000_000.0  # too soon to write
        clock.now += TOUCH_EVERY_S
        store.cache_get("html5", "page-1", "summary")
        assert used_at() == clock.now
        assert raw(store, "SELECT bytes FROM cache_usage") == [(len('"总结"'.encode()),)]


# -- file size --------------------------------------------------------------------------


def test_the_file_gives_pruned_pages_back(tmp_path: Path) -> None:
    long_text = Transcript(segments=[Segment(start=0, end=1, text="字" * 8000)], duration=1.0)
    with Store(tmp_path / "vidscribe.db", durable=False) as store:
        for i in range(200):
            task_id = finished_task(store, f"https://v.example/{i}", blocks=0)
            store.update_task(task_id, transcript=long_text)
        store.cache_put("html5", "page-1", "transcript", long_text)
        raw(store, "PRAGMA wal_checkpoint(TRUNCATE)")
        pages_before = raw(store, "PRAGMA page_count")[0][0]

        run, _ = pruner(store, Clock(time.time() + 31 * DAY_S), task_days=30, batch_size=50)
        assert run.run_once().tasks == 200
        raw(store, "PRAGMA wal_checkpoint(TRUNCATE)")

        assert raw(store, "PRAGMA freelist_count") == [(0,)]
        pages_after = raw(store, "PRAGMA page_count")[0][0]
        assert pages_after < pages_before / 10
        assert store.cache_get("html5", "page-1", "transcript") is not None  # what stays is intact
        assert raw(store, "PRAGMA integrity_check") == [("ok",)]
    assert (tmp_path / "vidscribe.db").stat().st_size == pages_after * 4096


# -- the background thread, settings -----------------------------------------------------


def test_the_background_pruner_runs_at_start_and_stops(store: Store) -> None:
    task_id = finished_task(store, "https://v.example/done")
    run, _ = pruner(store, Clock(time.time() + 31 * DAY_S), task_days=30, interval_s=3600)
    run.start()
    try:
        deadline = time.monotonic() + 10
        while store.get_task(task_id) is not None:
            assert time.monotonic() < deadline, "the first run did not happen"
            time.sleep(0.01)
    finally:
        run.stop(timeout=5)
    assert run._thread is not None and not run._thread.is_alive()


def test_retention_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().retention.task_days, Settings().retention.cache_mb) == (30, 512)
    monkeypatch.setenv("VIDSCRIBE_RETENTION__TASK_DAYS", "7")
    monkeypatch.setenv("VIDSCRIBE_RETENTION__CACHE_MB", "64")
    assert (Settings().retention.task_days, Settings().retention.cache_mb) == (7, 64)


# -- what a client sees of a pruned task ------------------------------------------------


async def test_a_pruned_task_is_a_404_on_the_api_and_the_view(store: Store, tmp_path: Path) -> None:
    task_id = finished_task(store, "https://v.example/done")
    app = create_app(Settings(api_tokens=[TOKEN], data_dir=tmp_path), LocalStoreClient(store), RecordingWorkQueue())
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client:
        assert (await client.get(f"/api/task/{task_id}", headers=auth)).status_code == 200
        pruner(store, Clock(time.time() + 31 * DAY_S), task_days=30)[0].run_once()

        for path in (f"/api/task/{task_id}", f"/api/task/{task_id}/transcript", f"/api/task/{task_id}/events"):
            answer = await client.get(path, headers=auth)
            assert answer.status_code == 404, path
            assert answer.json()["error"]["code"] == "not_found"
        for path in (f"/view/{task_id}/data", f"/view/{task_id}/transcript"):
            answer = await client.get(path)
            assert answer.status_code == 404, path
        page = await client.get(f"/view/{task_id}")
        assert page.status_code == 404
        assert "任务不存在" in page.text and "removed" in page.text


def test_a_layer_evicted_while_it_is_read_is_still_returned_and_stays_gone(tmp_path: Path) -> None:
    clock = Clock(1_000_000.0)
    with Store(tmp_path / "vidscribe.db", durable=False, clock=clock) as store:
        store.cache_put("html5", "page-1", "summary", "总结")
        clock.now += TOUCH_EVERY_S
        evict = pruner(store, clock, cache_mb=1e-9, task_days=0)[0]
        original = store._tx
        evicted: list[PruneReport] = []

        def evicting_between_read_and_mark(write: bool = False) -> object:
            if write:  # the read is done: the pruner gets the lock first
                store._tx = original  # type: ignore[method-assign]
                evicted.append(evict.run_once())
            return original(write)

        store._tx = evicting_between_read_and_mark  # type: ignore[method-assign]
        assert store.cache_get("html5", "page-1", "summary") == "总结"
        assert [report.cache_layers for report in evicted] == [1]
        assert store.cache_get("html5", "page-1", "summary") is None
        assert raw(store, "SELECT COUNT(*) FROM cache_usage") == [(0,)]


# -- sent blocks of live tasks ----------------------------------------------------------


def test_sent_notices_lose_their_text_but_never_go_out_twice_and_content_stays(store: Store) -> None:
    task, _ = store.create_task("https://v.example/live", TaskOptions(), webhook=LANE)
    notice = store.add_block(task.task_id, LANE, "llm-off", [("【状态】未校对", "text")])
    content = store.add_block(task.task_id, LANE, CONTENT_KEY, [("one", "text"), ("two", "text")])
    unsent = store.add_block(task.task_id, LANE, "failed", [("【状态】失败", "text")])
    for block, seq in ((notice, 0), (content, 0), (content, 1)):
        store.mark_part_sent(block, seq)

    run, batches = pruner(store, Clock(time.time()), task_days=30)
    assert run.run_once().notice_parts == 1
    assert sum(b.notice_parts for b in batches) == 1  # what the metric counts

    kept = {b.key: b for b in store.task_blocks(task.task_id)}
    assert kept["llm-off"].parts == [] and kept[CONTENT_KEY].parts and kept["failed"].parts
    assert store.add_block(task.task_id, LANE, "llm-off", [("【状态】未校对", "text")]) == notice  # not queued again
    store.mark_part_sent(notice, 0)  # a late second mark of a compacted part changes nothing
    assert store.redeliver(task.task_id) is True  # content is still whole
    assert [b.block_id for b in iter(lambda: _send_next(store), None)] == [content, unsent]
    assert run.run_once().notice_parts == 1  # the failed notice, now sent


def _send_next(store: Store) -> object:
    block = store.next_block(LANE)
    if block is not None:
        for part in block.parts:
            store.mark_part_sent(block.block_id, part.seq)
    return block
