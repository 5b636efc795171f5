"""Leases: a Transcriber holds its task for a while and keeps renewing; a task whose holder
died is claimable again once the lease runs out, and the re-dispatch sweep finds it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection

from actors.domain.priority import aged_rank_sql
from actors.domain.task import TaskRecord, TaskStatus
from actors.storage.database import placeholders
from actors.storage.tasks import TaskTable

OPEN_LEASE = "(lease_owner IS NULL OR lease_until <= ?)"  # claimable: nobody holds a live lease


class LeaseTable(TaskTable):
    """Claiming, renewing and releasing tasks."""

    def _claim(self, db: sqlite3.Connection, task_id: str, owner: str, lease_s: float) -> TaskRecord | None:
        now = time.time()
        # SET expressions see the old row: attempts grows unless we already hold a live lease.
        claimed = db.execute(
            "UPDATE tasks SET attempts = attempts + (CASE WHEN lease_owner = ? AND lease_until > ? THEN 0 ELSE 1 END),"
            " lease_owner = ?, lease_until = ?"
            " WHERE task_id = ? AND finished = 0 AND (lease_owner IS NULL OR lease_until <= ? OR lease_owner = ?)",
            (owner, now, owner, now + lease_s, task_id, now, owner),
        ).rowcount
        return self._load(db, task_id) if claimed else None

    def claim_task(self, task_id: str, owner: str, lease_s: float) -> TaskRecord | None:
        """Take (or keep) the task for `lease_s` seconds; None if another live owner holds it or it finished."""
        with self._tx(write=True) as db:
            return self._claim(db, task_id, owner, lease_s)

    def claim_next(self, owner: str, lease_s: float, statuses: Collection[TaskStatus]) -> TaskRecord | None:
        """Claim the most urgent unleased task in `statuses` (priority aged by waiting time); None if none."""
        with self._tx(write=True) as db:
            row = db.execute(
                "SELECT task_id FROM tasks"  # noqa: S608 - fixed SQL
                f" WHERE finished = 0 AND status IN ({placeholders(statuses)}) AND {OPEN_LEASE}"
                f" ORDER BY {aged_rank_sql('priority_rank')}, created_at, rowid LIMIT 1",
                (*(TaskStatus(s).value for s in statuses), time.time(), time.time()),
            ).fetchone()
            return None if row is None else self._claim(db, row[0], owner, lease_s)

    def renew_lease(self, task_id: str, owner: str, lease_s: float) -> bool:
        """Extend our lease; False if someone else took the task or it finished (stop working on it)."""
        with self._tx(write=True) as db:
            return bool(
                db.execute(
                    "UPDATE tasks SET lease_until = ? WHERE task_id = ? AND lease_owner = ? AND finished = 0",
                    (time.time() + lease_s, task_id, owner),
                ).rowcount
            )

    def release_task(self, task_id: str, owner: str) -> None:
        """Give the task up (if we hold it) so it can be claimed at once."""
        with self._tx(write=True) as db:
            # lease_until = now records when it was last held (the idle clock of stale_tasks).
            db.execute(
                "UPDATE tasks SET lease_owner = NULL, lease_until = ? WHERE task_id = ? AND lease_owner = ?",
                (time.time(), task_id, owner),
            )

    def stale_tasks(self, statuses: Collection[TaskStatus], idle_s: float) -> list[TaskRecord]:
        """Unleased tasks in `statuses` untouched (updated, leased, dispatched) for `idle_s`; stamps them dispatched.

        The stamp means each caller of a sweep hands out one work token per task per
        `idle_s`, however many sweepers run and however long the queue is.
        """
        now = time.time()
        with self._tx(write=True) as db:
            found = self._select(
                db,
                f"finished = 0 AND status IN ({placeholders(statuses)}) AND {OPEN_LEASE}"
                " AND MAX(updated_at, COALESCE(lease_until, 0), COALESCE(dispatched_at, 0)) <= ?",
                [*(TaskStatus(s).value for s in statuses), now, now - idle_s],
                "ORDER BY priority_rank, created_at, rowid",
            )
            db.executemany("UPDATE tasks SET dispatched_at = ? WHERE task_id = ?", [(now, t.task_id) for t in found])
        return found
