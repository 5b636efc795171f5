"""One SQLite file shared by all threads of a process: the connection, transactions and
schema migration under which the Store's tables work.

Concurrency: one connection shared by all threads and guarded by a lock, so threads
never contend inside SQLite ("database is locked" cannot happen in-process); writes
use BEGIN IMMEDIATE and a busy timeout, so another process on the same file (a CLI,
a second Store) waits its turn instead of failing.

Durability: WAL with synchronous=FULL, i.e. every commit is fsynced before the call
returns. NORMAL would survive a process crash but may lose the last commits on power
loss, and a lost send mark means a WeCom message delivered twice; the writes here are
small and a few per second, so the fsync costs nothing that matters.

Size: the file uses incremental auto-vacuum, so the pages the retention pruner frees are
given back to the filesystem (`_incremental_vacuum`), and the WAL is truncated after a
checkpoint (`journal_size_limit`): the file follows what it holds, never its peak.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from actors.domain.errors import VidscribeError
from actors.storage.filelock import hold_shared
from actors.storage.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
WAL_SIZE_LIMIT = 64 * 2**20  # bytes the WAL is cut back to after a checkpoint
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


class NewerStore(VidscribeError):
    """The store file was written by a newer vidscribe, whose schema this one does not know."""

    code = "store_schema_too_new"


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


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def placeholders(values: Collection[str]) -> str:
    return ",".join("?" * len(values))


class Database:
    """The open file; subclasses add the tables' operations."""

    def __init__(self, path: Path, *, durable: bool = True, clock: Callable[[], float] = time.time) -> None:
        """Open (creating or migrating) the store; `durable=False` skips fsync (tests, bulk loads);
        `clock` stamps cache use (tests pass a controllable one)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._lock_file = hold_shared(self.path)  # `vidscribe restore` refuses while any Store holds it
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._connect(durable)
            self._migrate()
            self._use_incremental_vacuum()
        except BaseException:
            self.close()
            raise

    def _connect(self, durable: bool) -> sqlite3.Connection:
        # Autocommit mode: transactions are explicit (see `_tx`), never implicit.
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        # Before WAL mode: that writes the header, after which only a VACUUM changes auto_vacuum.
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            log.warning("SQLite refused WAL mode on %s (got %s); concurrency will suffer", self.path, mode)
        db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        db.execute("PRAGMA foreign_keys = ON")
        return db

    def close(self) -> None:
        """Close the file; later calls raise."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._lock_file.close()  # after the connection: a restore must not start under it

    def __enter__(self) -> Self:
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
        """Bring an older file to SCHEMA_VERSION in one transaction (all steps or none); refuse a newer one."""
        with self._tx(write=True) as db:  # re-read inside the lock: another process may have migrated
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise NewerStore(
                    f"{self.path} has store schema {version}, written by a newer vidscribe; this one reads schema"
                    f" {SCHEMA_VERSION} and older. Upgrade vidscribe, or restore a backup made by this version."
                )
            if 0 < version < SCHEMA_VERSION:
                log.info("migrating %s from store schema %d to %d", self.path, version, SCHEMA_VERSION)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _statements(MIGRATIONS[target]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")

    def _use_incremental_vacuum(self) -> None:
        """Once per file made before schema 2: rewrite it with incremental auto-vacuum.

        A new file gets the mode before its first table (`_connect`); an older one only by a
        VACUUM, which cannot run inside the migration's transaction. It runs right after, and
        again at the next start if it was interrupted (a VACUUM is atomic on its own).
        """
        with self._lock:
            assert self._db is not None
            if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
                return
            log.info("compacting %s once for incremental vacuum (takes a while on a large file)", self.path)
            self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self._db.execute("VACUUM")

    def _incremental_vacuum(self, pages: int) -> int:
        """Give up to `pages` free pages back to the filesystem; returns the free pages left.
        Not a Store operation: the retention pruner's, in this process."""
        with self._lock:
            if self._db is None:
                raise RuntimeError("the store is closed")
            # executescript steps the pragma to the end: execute() would free one page only.
            self._db.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
            return int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
