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
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from actors.storage.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000


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
        with self._tx(write=True) as db:  # re-read inside the lock: another process may have migrated
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} has schema {version}; this vidscribe knows up to {SCHEMA_VERSION}")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _statements(MIGRATIONS[target]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")
