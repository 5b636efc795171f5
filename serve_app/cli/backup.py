"""`vidscribe backup PATH` and `vidscribe restore PATH`: the store file of VIDSCRIBE_DATA_DIR.

Both run on the machine (or in a pod) that has the data dir; the work is in
actors/storage/backup.py. Backup works while the service runs; restore refuses to.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from actors.storage.backup import backup, backup_target, prune_backups, restore
from actors.storage.store import STORE_FILE
from serve_app.settings import Settings


def add_backup_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `vidscribe backup` and `vidscribe restore`."""
    p = commands.add_parser(
        "backup",
        help="copy the store to PATH, consistently, while the service runs",
        description="Write a consistent copy of the store (SQLite's online backup) to PATH. A directory gets "
        "a new vidscribe-<UTC time>.db; with --keep, only the newest N of those are kept.",
    )
    p.add_argument("path", type=Path, metavar="PATH", help="backup file, or a directory for timestamped backups")
    p.add_argument("--keep", type=int, metavar="N", help="in a directory: delete all but the newest N backups")
    p.set_defaults(handler=run_backup)

    p = commands.add_parser(
        "restore",
        help="replace the store with a backup (the service must be stopped)",
        description="Check a backup (integrity, schema version) and put it in place of the store. Refuses while "
        "the service, or a backup, has the store open. The replaced store is kept beside it.",
    )
    p.add_argument("path", type=Path, metavar="PATH", help="a file written by `vidscribe backup`")
    p.set_defaults(handler=run_restore)


def run_backup(args: argparse.Namespace) -> int:
    """Back up the store of the configured data dir."""
    if args.keep is not None and (args.keep < 1 or not args.path.is_dir()):
        print("vidscribe: error: --keep needs N >= 1 and PATH a directory", file=sys.stderr)
        return 2
    store = Settings().data_dir / STORE_FILE
    info = backup(store, backup_target(args.path, time.time()))
    print(f"vidscribe: backed up {store} to {info.path} (schema {info.schema}, {info.tasks} tasks)")
    if args.keep is not None:
        for old in prune_backups(args.path, args.keep):
            print(f"vidscribe: deleted the old backup {old}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    """Restore a backup into the configured data dir."""
    store = Settings().data_dir / STORE_FILE
    info, aside = restore(args.path, store)
    print(f"vidscribe: restored {args.path} to {store} (schema {info.schema}, {info.tasks} tasks)")
    if aside is not None:
        print(f"vidscribe: the replaced store is kept as {aside}; delete it once the service runs well")
    return 0
