"""Task rows: created (idempotent per link and client, bounded), read, updated, listed, counted."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Any

from actors.domain.errors import TaskCancelled, VidscribeError
from actors.domain.priority import RANK
from actors.domain.task import Submission, TaskError, TaskOptions, TaskRecord, TaskStatus
from actors.storage.cache import fully_cached, task_key
from actors.storage.database import Database, like_pattern, placeholders

RECORD_FIELDS = tuple(TaskRecord.model_fields)
# What a live page shows while a task runs; the texts, which can be long, are left out.
STATE_FIELDS = tuple(
    name for name in RECORD_FIELDS if name not in {"video", "transcript", "proofread", "summary", "llm_usage"}
)
JSON_FIELDS = frozenset(
    {"options", "progress_detail", "video", "transcript", "warnings", "error", "delivery", "llm_usage"}
)


class QueueFull(VidscribeError):
    """Too many unfinished tasks: the gateway answers 429 with Retry-After."""

    code = "queue_full"
    http_status = 429


def new_task_id() -> str:
    """About 128 random bits, URL-safe (22 characters), never starting with "-": a command line
    would take such an id for an option (`vidscribe status -x…`)."""
    while (task_id := secrets.token_urlsafe(16)).startswith("-"):
        pass  # one id in 64: draw again (uniform over the ids that remain)
    return task_id


class TaskTable(Database):
    """The `tasks` table."""

    @staticmethod
    def _columns(record: TaskRecord, names: Collection[str]) -> dict[str, Any]:
        """Column values for the given record fields, plus every derived column."""
        dumped = record.model_dump(mode="json", include=set(names) - {"webhook"})
        columns: dict[str, Any] = {}
        for name in names:
            value = record.webhook if name == "webhook" else dumped[name]
            if name in JSON_FIELDS and value is not None:
                value = json.dumps(value, ensure_ascii=False)
            columns[name] = value
        video = record.video
        columns.update(
            url_key=task_key(record.url, record.options.playlist_item),
            client_key=record.client or "",
            priority_rank=RANK[record.priority],
            finished=int(record.status.finished),
            platform=video.platform.lower() if video else None,
            video_id=video.video_id if video else None,
            title=video.title if video else None,
        )
        return columns

    @staticmethod
    def _record(row: tuple[Any, ...]) -> TaskRecord:
        data = dict(zip(RECORD_FIELDS, row, strict=True))
        for name in JSON_FIELDS:
            if data[name] is not None:
                data[name] = json.loads(data[name])
        return TaskRecord.model_validate(data)

    def _select(
        self, db: sqlite3.Connection, where: str, params: Collection[Any] = (), tail: str = ""
    ) -> list[TaskRecord]:
        sql = f"SELECT {', '.join(RECORD_FIELDS)} FROM tasks WHERE {where} {tail}"  # noqa: S608 - fixed names
        return [self._record(row) for row in db.execute(sql, tuple(params))]

    def _load(self, db: sqlite3.Connection, task_id: str) -> TaskRecord:
        found = self._select(db, "task_id = ?", (task_id,))
        if not found:
            raise KeyError(f"no task {task_id}")
        return found[0]

    def _write(self, db: sqlite3.Connection, record: TaskRecord, names: Collection[str]) -> None:
        columns = self._columns(record, names)
        assignments = ", ".join(f"{name} = ?" for name in columns)
        db.execute(f"UPDATE tasks SET {assignments} WHERE task_id = ?", (*columns.values(), record.task_id))  # noqa: S608

    # -- tasks ------------------------------------------------------------------------
    def create_task(
        self,
        url: str,
        options: TaskOptions,
        *,
        client: str | None = None,
        webhook: str | None = None,
        max_unfinished: int | None = None,
    ) -> tuple[TaskRecord, bool]:
        """(the unfinished task for this url and client, False) if there is one, else (a new task, True).

        With `max_unfinished`, a new task beyond that many unfinished ones raises QueueFull.
        A new task whose URL resolved before to a fully cached video is marked `cached`.
        """
        submission = Submission(url=url, options=options, client=client, webhook=webhook)
        (result,) = self.create_tasks([submission], max_unfinished)
        if isinstance(result, QueueFull):
            raise result
        return result

    def create_tasks(
        self, submissions: Sequence[Submission], max_unfinished: int | None = None
    ) -> list[tuple[TaskRecord, bool] | QueueFull]:
        """`create_task` for each submission, in order, in one transaction (one disk sync for
        the lot: the gateway's group commit); a submission over the bound gets QueueFull."""
        with self._tx(write=True) as db:
            unfinished = 0 if max_unfinished is None else self._count_unfinished(db)
            results: list[tuple[TaskRecord, bool] | QueueFull] = []
            for submission in submissions:
                url_key = task_key(submission.url, submission.options.playlist_item)
                running = self._select(
                    db,
                    "url_key = ? AND client_key = ? AND finished = 0",
                    (url_key, submission.client or ""),
                    "ORDER BY created_at LIMIT 1",
                )
                if running:
                    results.append((running[0], False))
                elif max_unfinished is not None and unfinished >= max_unfinished:
                    results.append(QueueFull(f"{unfinished} tasks are waiting; retry later"))
                else:
                    results.append((self._insert_task(db, submission, cached=fully_cached(db, url_key)), True))
                    unfinished += 1
            return results

    def _insert_task(self, db: sqlite3.Connection, submission: Submission, *, cached: bool) -> TaskRecord:
        now = time.time()
        record = TaskRecord(
            cached=cached,
            task_id=new_task_id(),
            url=submission.url,
            client=submission.client,
            webhook=submission.webhook,
            options=submission.options,
            priority=submission.options.priority,
            created_at=now,
            updated_at=now,
        )
        columns = self._columns(record, RECORD_FIELDS)
        db.execute(
            f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({placeholders(columns)})",  # noqa: S608 - fixed names
            tuple(columns.values()),
        )
        return record

    def get_task(self, task_id: str) -> TaskRecord | None:
        """The task, or None."""
        with self._tx() as db:
            found = self._select(db, "task_id = ?", (task_id,))
        return found[0] if found else None

    def task_state(self, task_id: str, since: float | None = None) -> TaskRecord | None:
        """The task without its texts (video, transcript, proofread, summary left empty): its
        status, progress, delivery and error, a few hundred bytes however long the video. None
        when there is no such task, or when it is unchanged since `since` (its `updated_at`,
        which every write moves): what a live page polls."""
        with self._tx() as db:
            row = db.execute(
                f"SELECT {', '.join(STATE_FIELDS)} FROM tasks"  # noqa: S608 - fixed names
                " WHERE task_id = ? AND (? IS NULL OR updated_at != ?)",
                (task_id, since, since),
            ).fetchone()
        if row is None:
            return None
        data = dict(zip(STATE_FIELDS, row, strict=True))
        for name in JSON_FIELDS & set(STATE_FIELDS):
            if data[name] is not None:
                data[name] = json.loads(data[name])
        return TaskRecord.model_validate(data)

    def update_task(self, task_id: str, /, **fields: Any) -> TaskRecord:
        """Set any TaskRecord fields (validated) and updated_at; KeyError if the task is unknown,
        TaskCancelled if it was cancelled (its worker stops at this step)."""
        unknown = set(fields) - set(RECORD_FIELDS)
        if unknown or "task_id" in fields:
            raise TypeError(f"update_task() cannot set {sorted(unknown or {'task_id'})}")
        with self._tx(write=True) as db:
            record = self._load(db, task_id)
            if record.status is TaskStatus.CANCELLED:
                raise TaskCancelled(f"task {task_id} was cancelled")
            for name, value in fields.items():
                setattr(record, name, value)  # validate_assignment: dicts become models, bad values raise
            if "updated_at" not in fields:
                record.updated_at = time.time()
            self._write(db, record, {*fields, "updated_at"})
            return record

    def add_warning(self, task_id: str, warning: str) -> None:
        """Append a warning once (a retried step does not repeat it)."""
        with self._tx(write=True) as db:
            record = self._load(db, task_id)
            if warning not in record.warnings:
                record.warnings = [*record.warnings, warning]
                record.updated_at = time.time()
                self._write(db, record, ("warnings", "updated_at"))

    def fail_task(self, task_id: str, code: str, message: str) -> TaskRecord:
        """Mark the task failed with a stable error code and a human message."""
        return self.update_task(task_id, status=TaskStatus.FAILED, error=TaskError(code=code, message=message))

    def unfinished_tasks(self, statuses: Collection[TaskStatus] | None = None) -> list[TaskRecord]:
        """Unfinished tasks (optionally only in `statuses`), oldest first."""
        where, params = "finished = 0", []
        if statuses is not None:
            where += f" AND status IN ({placeholders(statuses)})"
            params = [TaskStatus(s).value for s in statuses]
        with self._tx() as db:
            return self._select(db, where, params, "ORDER BY created_at, rowid")

    def count_unfinished(self) -> int:
        """How many tasks are queued or in progress."""
        with self._tx() as db:
            return self._count_unfinished(db)

    @staticmethod
    def _count_unfinished(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT COUNT(*) FROM tasks WHERE finished = 0").fetchone()[0])

    def list_tasks(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        status: TaskStatus | None = None,
        client: str | None = None,
        query: str | None = None,
    ) -> list[TaskRecord]:
        """Newest first; `query` matches a substring of the url or title, or a whole task id."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must be >= 0")
        clauses, params = ["1"], []
        if status is not None:
            clauses.append("status = ?")
            params.append(TaskStatus(status).value)
        if client is not None:
            clauses.append("client_key = ?")
            params.append(client)
        if query:
            clauses.append("(url LIKE ? ESCAPE '\\' OR title LIKE ? ESCAPE '\\' OR task_id = ?)")
            params += [like_pattern(query), like_pattern(query), query]
        with self._tx() as db:
            return self._select(
                db,
                " AND ".join(clauses),
                [*params, limit, offset],
                "ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            )
