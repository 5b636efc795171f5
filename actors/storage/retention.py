"""Retention: the Store deletes what it no longer needs, in the background, a little at a time.

- Finished tasks whose last change is older than `retention.task_days` go, with their outbox
  blocks (and the blocks' parts); a task with a block still to send stays until it is sent
  or parked.
- Cache layers beyond `retention.cache_mb` go, least recently used first (a read marks a
  layer used: actors/storage/cache.py), with the aliases of a video that has no layer left.
- Then the freed pages go back to the filesystem (incremental vacuum).

Every step is one short write transaction of at most `batch_size` rows, with a pause after
it: the Store's lock is free between batches, so submissions and send marks are answered
while a long prune runs.

Sent blocks of live tasks are compacted: a sent notice (failed, llm-off, ...) loses its parts'
text, its block row stays (the record that keeps a retried step from sending it twice). A sent
content block keeps its parts: they are what redeliver sends again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from actors.domain.outbox import CONTENT_KEY
from actors.storage.database import Database, placeholders
from actors.storage.settings import RetentionSettings

log = logging.getLogger(__name__)

DAY_S = 86_400.0
# Between batches: long enough for the threads waiting on the Store's lock (which is not
# fair: a tight loop could take it straight back) to get it.
BATCH_PAUSE_S = 0.02
VACUUM_PAGES = 1024  # pages given back per step: 4 MiB at SQLite's default page size


@dataclass
class PruneReport:
    """What one batch, or a whole run, deleted."""

    tasks: int = 0
    outbox_blocks: int = 0
    cache_layers: int = 0
    cache_bytes: int = 0
    notice_parts: int = 0
    batches: int = 0

    def add(self, other: PruneReport) -> None:
        for each in fields(self):
            setattr(self, each.name, getattr(self, each.name) + getattr(other, each.name))

    def deleted(self) -> dict[str, int]:
        """What was deleted, by kind (every count but `batches`)."""
        return {each.name: getattr(self, each.name) for each in fields(self) if each.name != "batches"}


def prune_finished_tasks(db: sqlite3.Connection, cutoff: float, limit: int) -> PruneReport:
    """Delete up to `limit` finished tasks last changed before `cutoff`, with their blocks."""
    ids = [
        task_id
        for (task_id,) in db.execute(
            "SELECT task_id FROM tasks WHERE finished = 1 AND updated_at < ? AND NOT EXISTS"
            " (SELECT 1 FROM outbox_blocks b WHERE b.task_id = tasks.task_id AND b.state = 'pending')"
            " ORDER BY updated_at LIMIT ?",
            (cutoff, limit),
        ).fetchall()
    ]
    if not ids:
        return PruneReport()
    marks = placeholders(ids)
    # The blocks' parts go with them (ON DELETE CASCADE).
    blocks = db.execute(f"DELETE FROM outbox_blocks WHERE task_id IN ({marks})", ids).rowcount  # noqa: S608
    db.execute(f"DELETE FROM tasks WHERE task_id IN ({marks})", ids)  # noqa: S608 - placeholders only
    return PruneReport(tasks=len(ids), outbox_blocks=blocks, batches=1)


def compact_sent_notices(db: sqlite3.Connection, limit: int) -> PruneReport:
    """Delete the parts of up to `limit` sent notice blocks; the blocks themselves stay."""
    ids = [
        block_id
        for (block_id,) in db.execute(
            "SELECT block_id FROM outbox_blocks b WHERE state = 'sent' AND key <> ? AND EXISTS"
            " (SELECT 1 FROM outbox_parts p WHERE p.block_id = b.block_id) LIMIT ?",
            (CONTENT_KEY, limit),
        ).fetchall()
    ]
    if not ids:
        return PruneReport()
    parts = db.execute(f"DELETE FROM outbox_parts WHERE block_id IN ({placeholders(ids)})", ids).rowcount  # noqa: S608
    return PruneReport(notice_parts=parts, batches=1)


def evict_cache(db: sqlite3.Connection, max_bytes: int, limit: int) -> PruneReport:
    """Delete up to `limit` least recently used cache layers while the cache exceeds `max_bytes`."""
    total = int(db.execute("SELECT COALESCE(SUM(bytes), 0) FROM cache_usage").fetchone()[0])
    excess = total - max_bytes
    if excess <= 0:
        return PruneReport()
    victims: list[tuple[str, str, str]] = []
    freed = 0
    for platform, video_id, layer, size in db.execute(
        "SELECT platform, video_id, layer, bytes FROM cache_usage ORDER BY used_at LIMIT ?", (limit,)
    ).fetchall():
        victims.append((platform, video_id, layer))
        freed += size
        if freed >= excess:
            break
    # Their cache_usage rows go with them (ON DELETE CASCADE).
    db.executemany("DELETE FROM cache WHERE platform = ? AND video_id = ? AND layer = ?", victims)
    db.executemany(
        "DELETE FROM aliases WHERE platform = ? AND video_id = ? AND NOT EXISTS"
        " (SELECT 1 FROM cache c WHERE c.platform = aliases.platform AND c.video_id = aliases.video_id)",
        sorted({(platform, video_id) for platform, video_id, _ in victims}),
    )
    return PruneReport(cache_layers=len(victims), cache_bytes=freed, batches=1)


class Pruner:
    """Runs retention over a Store: once (`run_once`) or every `interval_s` in a thread (`start`)."""

    def __init__(
        self,
        store: Database,
        settings: RetentionSettings,
        *,
        clock: Callable[[], float] = time.time,
        pause: Callable[[], None] = lambda: time.sleep(BATCH_PAUSE_S),
        on_batch: Callable[[PruneReport], None] | None = None,
    ) -> None:
        """`pause` runs after every batch and vacuum step; `on_batch` gets what each batch deleted."""
        self._store = store
        self._settings = settings
        self._clock = clock
        self._pause = pause
        self._on_batch = on_batch
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> PruneReport:
        """Prune old tasks, compact sent notices, evict the cache over its budget, then give
        free pages back."""
        report = PruneReport()
        settings = self._settings
        if settings.task_days > 0:
            cutoff = self._clock() - settings.task_days * DAY_S
            self._in_batches(report, lambda db: prune_finished_tasks(db, cutoff, settings.batch_size))
        self._in_batches(report, lambda db: compact_sent_notices(db, settings.batch_size))
        if settings.cache_mb > 0:
            budget = int(settings.cache_mb * 2**20)
            self._in_batches(report, lambda db: evict_cache(db, budget, settings.batch_size))
        # Pages are freed by any delete, not only ours: always give them back.
        while self._store._incremental_vacuum(VACUUM_PAGES) > 0 and not self._stopping.is_set():
            self._pause()
        if report.batches:
            log.info(
                "pruned %d tasks (%d outbox blocks), %d sent notice parts and %d cache layers (%.1f MiB) in %d batches",
                report.tasks,
                report.outbox_blocks,
                report.notice_parts,
                report.cache_layers,
                report.cache_bytes / 2**20,
                report.batches,
            )
        return report

    def _in_batches(self, report: PruneReport, batch: Callable[[sqlite3.Connection], PruneReport]) -> None:
        while not self._stopping.is_set():
            with self._store._tx(write=True) as db:  # one short transaction per batch
                done = batch(db)
            if not done.batches:
                return
            report.add(done)
            if self._on_batch is not None:
                self._on_batch(done)
            self._pause()

    def start(self) -> None:
        """Run `run_once` now and every `interval_s` in a daemon thread, until `stop`."""
        self._thread = threading.Thread(target=self._run_forever, name="store-pruner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current batch; waits up to `timeout` seconds."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except Exception:  # the next run tries again; the service must not stop for this
                log.exception("pruning the store failed; next try in %.0f s", self._settings.interval_s)
            self._stopping.wait(self._settings.interval_s)
