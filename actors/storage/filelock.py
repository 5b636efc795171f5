"""The store's lock file: every open Store (and a running backup) holds a shared lock on
`<store>.lock`; `vidscribe restore` replaces the file only under the exclusive lock.

flock(2) rather than a pid file: the kernel drops the lock when its holder exits, however
it exits (SIGKILL, a lost node), so a crash never leaves a stale "service is up" behind;
and it works between processes, containers and pods that share the volume on one node.
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path
from typing import IO

from actors.domain.errors import VidscribeError

WAIT_FOR_RESTORE_S = 60.0  # a Store starting while a restore runs waits this long for it


class StoreInUse(VidscribeError):
    """The store file is open elsewhere (the service, a backup), or being restored."""

    code = "store_in_use"
    http_status = 503


def lock_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".lock")


def _open(store_path: Path) -> IO[bytes]:
    return lock_path(store_path).open("a+b")


def hold_shared(store_path: Path, wait_s: float = WAIT_FOR_RESTORE_S) -> IO[bytes]:
    """Take the shared lock (many holders at once); waits `wait_s` for a restore to finish.
    The lock lasts until the returned file is closed."""
    handle = _open(store_path)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise StoreInUse(f"{store_path} is being restored; retry when `vidscribe restore` is done") from None
            time.sleep(0.2)


def hold_exclusive(store_path: Path) -> IO[bytes]:
    """Take the exclusive lock now, or raise StoreInUse: nothing else may have the store open."""
    handle = _open(store_path)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StoreInUse(
            f"{store_path} is in use: the service (or a backup) has it open. Stop the service first"
            " (`vidscribe serve`: Ctrl-C; Kubernetes: delete the RayService), then restore."
        ) from None
    return handle
