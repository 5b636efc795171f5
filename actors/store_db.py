"""The Store: vidscribe's source of truth in one SQLite file (tasks, cache layers, outbox).

Plain module (no Ray); actors/store.py wraps it in the singleton Serve deployment.

Concurrency: one connection shared by all threads and guarded by a lock, so threads
never contend inside SQLite ("database is locked" cannot happen in-process); writes
use BEGIN IMMEDIATE and a busy timeout, so another process on the same file (a CLI,
a second Store) waits its turn instead of failing.

Durability: WAL with synchronous=FULL, i.e. every commit is fsynced before the call
returns. NORMAL would survive a process crash but may lose the last commits on power
loss, and a lost send mark means a WeCom message delivered twice; the writes here are
small and a few per second, so the fsync costs nothing that matters.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel

from actors import outbox_db
from actors.errors import VidscribeError
from actors.models import Priority, TaskOptions, TaskStatus
from actors.priority import RANK, aged_rank_sql
from actors.records import OutboxBlock, Submission, TaskError, TaskRecord

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
CACHE_LAYERS = frozenset({"metadata", "transcript", "proofread", "summary"})
PRIORITY_RANK = RANK
FINISHED = tuple(s.value for s in TaskStatus if s.finished)

TASKS_SCHEMA = """
CREATE TABLE tasks (
    task_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    url_key TEXT NOT NULL,           -- normalised url: the idempotency key with client_key
    client TEXT,
    client_key TEXT NOT NULL,        -- client or '' (NULLs never compare equal)
    webhook TEXT,
    options TEXT NOT NULL,
    priority TEXT NOT NULL,
    priority_rank INTEGER NOT NULL,  -- 0 = high: sorts the most urgent first
    status TEXT NOT NULL,
    finished INTEGER NOT NULL,
    progress REAL NOT NULL,
    progress_detail TEXT NOT NULL,
    source TEXT,
    cached INTEGER NOT NULL,
    video TEXT,
    platform TEXT,                   -- lower-cased, from video: the cache identity
    video_id TEXT,
    title TEXT,
    transcript TEXT,
    proofread TEXT,
    summary TEXT,
    warnings TEXT NOT NULL,
    error TEXT,
    delivery TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    dispatched_at REAL
);
CREATE INDEX tasks_created ON tasks (created_at);
CREATE INDEX tasks_status ON tasks (status, created_at);
CREATE INDEX tasks_client ON tasks (client_key, created_at);
CREATE INDEX tasks_open_url ON tasks (url_key, client_key, created_at) WHERE finished = 0;
CREATE INDEX tasks_open_video ON tasks (platform, video_id, created_at) WHERE finished = 0;
CREATE INDEX tasks_open ON tasks (created_at) WHERE finished = 0;
CREATE TABLE cache (
    platform TEXT NOT NULL,
    video_id TEXT NOT NULL,
    layer TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (platform, video_id, layer)
) WITHOUT ROWID;
CREATE TABLE aliases (
    url_key TEXT PRIMARY KEY,        -- a normalised URL seen to resolve to this video
    platform TEXT NOT NULL,
    video_id TEXT NOT NULL
) WITHOUT ROWID;
"""

# Schema version -> the SQL that brings the previous version to it.
MIGRATIONS = {1: TASKS_SCHEMA + outbox_db.SCHEMA}

RECORD_FIELDS = tuple(TaskRecord.model_fields)
JSON_FIELDS = frozenset({"options", "progress_detail", "video", "transcript", "warnings", "error", "delivery"})
OPEN_LEASE = "(lease_owner IS NULL OR lease_until <= ?)"  # claimable: nobody holds a live lease


class QueueFull(VidscribeError):
    """Too many unfinished tasks: the gateway answers 429 with Retry-After."""

    code = "queue_full"
    http_status = 429


def new_task_id() -> str:
    """128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


def normalize_url(url: str) -> str:
    """The idempotency form of a URL: case-folded scheme and host, no default port, fragment or utm_*."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port is not None and (scheme, parts.port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.startswith("utm_")])
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


def _statements(script: str) -> Iterator[str]:
    """Split a script with SQLite's own tokenizer (executescript would commit our transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending!r}")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _in(values: Collection[str]) -> str:
    return ",".join("?" * len(values))


class Store:
    """Tasks, cache layers and the outbox in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        """Open (creating or migrating) the store; `durable=False` skips fsync (tests, bulk loads)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are explicit (see `_tx`), never implicit.
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            log.warning("SQLite refused WAL mode on %s (got %s); concurrency will suffer", self.path, mode)
        db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        self._db: sqlite3.Connection | None = db
        self._lock = threading.Lock()
        self._migrate()

    def close(self) -> None:
        """Close the file; later calls raise."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; IMMEDIATE for writes so they never deadlock on upgrade."""
        with self._lock:
            if self._db is None:
                raise RuntimeError("the store is closed")
            db = self._db
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        with self._tx(write=True) as db:  # re-read inside the lock: another process may have migrated
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} has schema {version}; this vidscribe knows up to {SCHEMA_VERSION}")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _statements(MIGRATIONS[target]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")

    # -- task rows ------------------------------------------------------------------
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
            url_key=normalize_url(record.url),
            client_key=record.client or "",
            priority_rank=PRIORITY_RANK[record.priority],
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
                url_key = normalize_url(submission.url)
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
                    results.append((self._insert_task(db, submission, cached=self._fully_cached(db, url_key)), True))
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
            f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({_in(columns)})",  # noqa: S608 - fixed names
            tuple(columns.values()),
        )
        return record

    def get_task(self, task_id: str) -> TaskRecord | None:
        """The task, or None."""
        with self._tx() as db:
            found = self._select(db, "task_id = ?", (task_id,))
        return found[0] if found else None

    def update_task(self, task_id: str, /, **fields: Any) -> TaskRecord:
        """Set any TaskRecord fields (validated) and updated_at; KeyError if the task is unknown."""
        unknown = set(fields) - set(RECORD_FIELDS)
        if unknown or "task_id" in fields:
            raise TypeError(f"update_task() cannot set {sorted(unknown or {'task_id'})}")
        with self._tx(write=True) as db:
            record = self._load(db, task_id)
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

    def find_active_by_video(self, platform: str, video_id: str, *, exclude: str | None = None) -> TaskRecord | None:
        """The oldest unfinished task for this video, other than `exclude`."""
        with self._tx() as db:
            found = self._select(
                db,
                "platform = ? AND video_id = ? AND finished = 0 AND task_id != ?",
                (platform.lower(), video_id, exclude or ""),
                "ORDER BY created_at, rowid LIMIT 1",
            )
        return found[0] if found else None

    def unfinished_tasks(self, statuses: Collection[TaskStatus] | None = None) -> list[TaskRecord]:
        """Unfinished tasks (optionally only in `statuses`), oldest first."""
        where, params = "finished = 0", []
        if statuses is not None:
            where += f" AND status IN ({_in(statuses)})"
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
            params += [_like(query), _like(query), query]
        with self._tx() as db:
            return self._select(
                db,
                " AND ".join(clauses),
                [*params, limit, offset],
                "ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            )

    # -- leases -----------------------------------------------------------------------
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
                f"SELECT task_id FROM tasks WHERE finished = 0 AND status IN ({_in(statuses)}) AND {OPEN_LEASE}"  # noqa: S608
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

    def expired_tasks(self, statuses: Collection[TaskStatus]) -> list[TaskRecord]:
        """Unfinished tasks in `statuses` that nobody holds a live lease on, oldest first."""
        with self._tx() as db:
            return self._select(
                db,
                f"finished = 0 AND status IN ({_in(statuses)}) AND {OPEN_LEASE}",
                [*(TaskStatus(s).value for s in statuses), time.time()],
                "ORDER BY created_at, rowid",
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
                f"finished = 0 AND status IN ({_in(statuses)}) AND {OPEN_LEASE}"
                " AND MAX(updated_at, COALESCE(lease_until, 0), COALESCE(dispatched_at, 0)) <= ?",
                [*(TaskStatus(s).value for s in statuses), now, now - idle_s],
                "ORDER BY priority_rank, created_at, rowid",
            )
            db.executemany("UPDATE tasks SET dispatched_at = ? WHERE task_id = ?", [(now, t.task_id) for t in found])
        return found

    # -- cache layers ---------------------------------------------------------------
    def cache_get(self, platform: str, video_id: str, layer: str) -> Any | None:
        """The cached JSON value of a layer for this video, or None."""
        if layer not in CACHE_LAYERS:
            raise ValueError(f"unknown cache layer {layer!r}")
        with self._tx() as db:
            row = db.execute(
                "SELECT value FROM cache WHERE platform = ? AND video_id = ? AND layer = ?",
                (platform.lower(), video_id, layer),
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def cache_put(self, platform: str, video_id: str, layer: str, value: Any) -> None:
        """Store (replace) a layer for this video; `value` is JSON-able or a pydantic model."""
        if layer not in CACHE_LAYERS:
            raise ValueError(f"unknown cache layer {layer!r}")
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if value is None:
            raise ValueError("None is what a cache miss returns; it cannot be stored")
        with self._tx(write=True) as db:
            db.execute(
                "INSERT INTO cache (platform, video_id, layer, value, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (platform, video_id, layer)"
                " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (platform.lower(), video_id, layer, json.dumps(value, ensure_ascii=False), time.time()),
            )

    def remember_alias(self, url: str, platform: str, video_id: str) -> None:
        """Record that `url` resolves to this video, so a repeat is known before resolving."""
        with self._tx(write=True) as db:
            db.execute(
                "INSERT OR REPLACE INTO aliases (url_key, platform, video_id) VALUES (?, ?, ?)",
                (normalize_url(url), platform.lower(), video_id),
            )

    def lookup_alias(self, url: str) -> tuple[str, str] | None:
        """The (platform, video_id) this URL resolved to before, if it did."""
        with self._tx() as db:
            row = db.execute(
                "SELECT platform, video_id FROM aliases WHERE url_key = ?", (normalize_url(url),)
            ).fetchone()
        return None if row is None else (row[0], row[1])

    def cached_video(self, url: str) -> tuple[str, str] | None:
        """The video behind `url` when both its metadata and transcript are cached."""
        with self._tx() as db:
            row = db.execute(
                "SELECT platform, video_id FROM aliases WHERE url_key = ?", (normalize_url(url),)
            ).fetchone()
            return (row[0], row[1]) if row is not None and self._fully_cached(db, normalize_url(url)) else None

    @staticmethod
    def _fully_cached(db: sqlite3.Connection, url_key: str) -> bool:
        row = db.execute(
            "SELECT COUNT(*) FROM aliases a JOIN cache c ON c.platform = a.platform AND c.video_id = a.video_id"
            " WHERE a.url_key = ? AND c.layer IN ('metadata', 'transcript')",
            (url_key,),
        ).fetchone()
        return bool(row[0] == 2)

    # -- outbox (actors/outbox_db.py) ----------------------------------------------
    def add_block(self, task_id: str, lane: str, key: str, parts: list[tuple[str, str]]) -> int:
        """Queue a block of (content, msgtype) parts on a lane; idempotent on (task_id, key)."""
        with self._tx(write=True) as db:
            row = db.execute("SELECT priority FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
            priority = Priority(row[0]) if row else Priority.NORMAL
            return outbox_db.add_block(db, task_id, lane, key, [(c, m) for c, m in parts], priority)

    def next_block(self, lane: str) -> OutboxBlock | None:
        """The block to send next on this lane (a started one first), with only its unsent parts."""
        with self._tx() as db:
            return outbox_db.next_block(db, lane)

    def mark_part_sent(self, block_id: int, seq: int) -> None:
        """Durably record that a part was delivered (committed before returning)."""
        with self._tx(write=True) as db:
            outbox_db.mark_part_sent(db, block_id, seq)

    def abandon_block(self, block_id: int, errcode: int | None, message: str) -> None:
        """Stop sending a block that WeCom refused for good."""
        with self._tx(write=True) as db:
            outbox_db.abandon_block(db, block_id, errcode, message)

    def lanes_with_pending(self) -> list[str]:
        """Lanes that have a block still to send."""
        with self._tx() as db:
            return outbox_db.lanes_with_pending(db)

    def block_progress(self, block_id: int) -> tuple[int, int]:
        """(parts sent, parts total) of a block; KeyError if unknown."""
        with self._tx() as db:
            return outbox_db.block_progress(db, block_id)

    def find_block(self, task_id: str, key: str) -> tuple[int, int, int] | None:
        """(block id, parts sent, parts total) of the task's block with this key, or None."""
        with self._tx() as db:
            return outbox_db.find_block(db, task_id, key)

    def task_blocks(self, task_id: str) -> list[OutboxBlock]:
        """All of a task's blocks with every part and its send mark (inspection, tests)."""
        with self._tx() as db:
            return outbox_db.task_blocks(db, task_id)
