"""The operator's cookies.txt, used read-only: each YoutubeDL gets a private copy.

yt-dlp writes its cookie jar back to the file when it closes (the site's new session
cookies included), so handing it the operator's file would rewrite that file on every task,
and concurrent tasks would race on it. A copy per use (mode 0600, deleted afterwards) keeps
the operator's file as exported. Cookie values are never logged; the path may be.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def private_cookie_jar(cookies_file: Path | None) -> Iterator[Path | None]:
    """A temporary copy of `cookies_file` for one YoutubeDL, removed on exit; None when no file
    is configured or it cannot be read (then the request goes without cookies, with a warning)."""
    copy = _copy(cookies_file.expanduser()) if cookies_file is not None else None
    try:
        yield copy
    finally:
        if copy is not None:
            copy.unlink(missing_ok=True)


def _copy(source: Path) -> Path | None:
    fd, name = tempfile.mkstemp(prefix="vidscribe-cookies-", suffix=".txt")  # readable by us only
    copy = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as original:
            shutil.copyfileobj(original, out)
    except OSError as e:
        copy.unlink(missing_ok=True)
        log.warning("cookies file %s cannot be read (%s); continuing without cookies", source, e.strerror or e)
        return None
    return copy
