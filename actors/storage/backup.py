"""Backups of the store while the service runs, and restoring one while it does not.

A backup is SQLite's online backup API (not a file copy: the WAL holds the latest commits)
in one step, i.e. one read snapshot: in WAL mode the service keeps writing meanwhile, and
the copy is every commit up to that moment and none after. It is written beside its
destination and renamed into place, so PATH is never half a backup.

Restore takes the store's exclusive lock (actors/storage/filelock.py), so it refuses while
any Store (the service) or a backup has the file open; it checks the copy
(integrity_check, a schema this vidscribe reads) before swapping it in with one rename.
The replaced file is kept beside it, `<store>.before-restore-<time>`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from actors.domain.errors import VidscribeError
from actors.storage.filelock import hold_exclusive, hold_shared
from actors.storage.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)

BACKUP_PREFIX = "vidscribe-"  # a backup into a directory is vidscribe-<UTC time>.db
BACKUP_SUFFIX = ".db"


class BadBackup(VidscribeError):
    """The file is missing, damaged, not a vidscribe store, or from a newer vidscribe."""

    code = "bad_backup"


@dataclass(frozen=True)
class StoreFileInfo:
    """A checked store file: its schema version and how many tasks it holds."""

    path: Path
    schema: int
    tasks: int


def _stamp(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    """An existing file only (never create one by mistake)."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=30)


def _open_to_read(path: Path) -> sqlite3.Connection:
    """`path` to read from. Read-write where allowed: a WAL-mode file (a raw copy of a store)
    read through a read-only handle would leave its -wal and -shm files behind."""
    try:
        db = _connect(path, "rw")
        db.execute("PRAGMA schema_version").fetchone()  # opening is lazy: fail here, not later
        return db
    except sqlite3.OperationalError:
        return _connect(path, "ro")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source_path: Path, target: Path) -> None:
    """A consistent copy of `source_path` at `target`, as one self-contained file (no WAL)."""
    target.unlink(missing_ok=True)
    with closing(_open_to_read(source_path)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)  # pages=-1: every page in one step, from one read snapshot
        copy.execute("PRAGMA journal_mode = DELETE")
    _fsync(target)


def verify(path: Path) -> StoreFileInfo:
    """Check that `path` is an intact vidscribe store this version can open; raise BadBackup if not."""
    try:
        with closing(_open_to_read(path)) as db:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
            if problems != ["ok"]:
                raise BadBackup(f"{path} is damaged: {'; '.join(problems[:3])}")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version < 1:
                raise BadBackup(f"{path} is not a vidscribe store (no schema version)")
            if version > SCHEMA_VERSION:
                raise BadBackup(
                    f"{path} has store schema {version}, from a newer vidscribe; this one reads up to"
                    f" {SCHEMA_VERSION}. Restore it with that version, or pick an older backup."
                )
            tasks = int(db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
    except sqlite3.Error as e:
        raise BadBackup(f"{path} cannot be read as a vidscribe store: {e}") from e
    return StoreFileInfo(path=path, schema=version, tasks=tasks)


def backup_target(path: Path, now: float) -> Path:
    """Where `vidscribe backup PATH` writes: PATH, or a new timestamped file when PATH is a directory."""
    return path / f"{BACKUP_PREFIX}{_stamp(now)}{BACKUP_SUFFIX}" if path.is_dir() else path


def backup(store_path: Path, target: Path) -> StoreFileInfo:
    """Copy the store (live or not) to `target`, replacing it whole or not at all."""
    if not store_path.is_file():
        raise BadBackup(f"there is no store at {store_path} (check VIDSCRIBE_DATA_DIR)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with closing(hold_shared(store_path)):  # a restore cannot replace the file under us
        try:
            _copy(store_path, partial)
            info = verify(partial)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, target)
    _fsync(target.parent)
    return StoreFileInfo(path=target, schema=info.schema, tasks=info.tasks)


def prune_backups(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` timestamped backups in `directory`; returns the deleted."""
    found = sorted(directory.glob(f"{BACKUP_PREFIX}*{BACKUP_SUFFIX}"))  # the names sort by time
    doomed = found[:-keep] if keep > 0 else found
    for old in doomed:
        old.unlink()
    return doomed


def restore(backup_path: Path, store_path: Path, now: float | None = None) -> tuple[StoreFileInfo, Path | None]:
    """Put a checked copy of `backup_path` in place of the store; StoreInUse while it is open.
    Returns the restored file's info and where the replaced store was kept (None: there was none)."""
    if not backup_path.is_file():
        raise BadBackup(f"no backup at {backup_path}")
    store_path.parent.mkdir(parents=True, exist_ok=True)
    staging = store_path.with_name(store_path.name + ".restoring")
    with closing(hold_exclusive(store_path)):
        try:
            _copy(backup_path, staging)
            info = verify(staging)
        except sqlite3.Error as e:
            staging.unlink(missing_ok=True)
            raise BadBackup(f"{backup_path} cannot be read as a vidscribe store: {e}") from e
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        aside = _set_aside(store_path, time.time() if now is None else now) if store_path.exists() else None
        os.replace(staging, store_path)  # the one step a reader could see: old file, then new file
        _fsync(store_path.parent)
    return StoreFileInfo(path=store_path, schema=info.schema, tasks=info.tasks), aside


def _set_aside(store_path: Path, now: float) -> Path:
    """Keep the store about to be replaced as `<store>.before-restore-<time>` (its WAL too)."""
    try:  # fold the WAL into the file, so that the kept copy is one file
        with closing(_connect(store_path, "rw")) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as e:
        log.warning("could not checkpoint %s before replacing it (%s); keeping its WAL beside it", store_path, e)
    aside = store_path.with_name(f"{store_path.name}.before-restore-{_stamp(now)}")
    try:
        os.link(store_path, aside)  # no copy: the old inode stays under the new name
    except OSError:
        shutil.copy2(store_path, aside)
    # A WAL left beside the new file would be replayed into it: it belongs to the old one.
    for suffix in ("-wal", "-shm"):
        side = store_path.with_name(store_path.name + suffix)
        if side.exists():
            if suffix == "-wal" and side.stat().st_size:
                os.replace(side, aside.with_name(aside.name + suffix))
            else:
                side.unlink()
    return aside
