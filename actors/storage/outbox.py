"""The durable outbox: ordered blocks of WeCom messages per lane, with per-part send marks.

Plain functions over an open sqlite3 connection, called by `OutboxTable` inside its
transactions (so they never commit themselves). A block moves pending -> sent (every
part marked) or pending -> abandoned (WeCom refused it for good, or the task was cancelled); only pending blocks
are ever handed out, so a finished block is never sent again.
"""

from __future__ import annotations

import sqlite3
import time

from actors.domain.errors import TaskCancelled
from actors.domain.outbox import CONTENT_KEY, OutboxBlock, OutboxPart
from actors.domain.priority import Priority, aged_rank_sql, rank_sql
from actors.domain.task import TaskStatus
from actors.storage.database import Database


def add_block(
    db: sqlite3.Connection, task_id: str, lane: str, key: str, parts: list[tuple[str, str]], priority: Priority
) -> int:
    """Insert a block unless (task_id, key) exists; returns the block id either way."""
    found = db.execute("SELECT block_id FROM outbox_blocks WHERE task_id = ? AND key = ?", (task_id, key)).fetchone()
    if found is not None:
        return int(found[0])
    if not parts:
        raise ValueError("a block needs at least one part")
    cursor = db.execute(
        "INSERT INTO outbox_blocks (task_id, lane, key, priority, parts_total, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (task_id, lane, key, priority.value, len(parts), time.time()),
    )
    block_id = cursor.lastrowid
    assert block_id is not None
    db.executemany(
        "INSERT INTO outbox_parts (block_id, seq, content, msgtype) VALUES (?, ?, ?, ?)",
        [(block_id, seq, content, msgtype) for seq, (content, msgtype) in enumerate(parts)],
    )
    return block_id


# The content block of an item of a playlist request waits while an earlier item of the same
# request (options.series, options.playlist_item) is unfinished: items reach the group in order
# whichever is transcribed first. A failed item is finished, so it never holds the rest up.
_WAITS_FOR_EARLIER_ITEM = """key = ? AND EXISTS (
    SELECT 1 FROM tasks AS mine JOIN tasks AS earlier
      ON json_extract(earlier.options, '$.series') = json_extract(mine.options, '$.series')
    WHERE mine.task_id = outbox_blocks.task_id AND earlier.finished = 0
      AND json_extract(earlier.options, '$.playlist_item') < json_extract(mine.options, '$.playlist_item'))"""


def next_block(db: sqlite3.Connection, lane: str) -> OutboxBlock | None:
    """The lane's block to send now, with only its unsent parts in seq order."""
    # A started block finishes before any other begins (nothing may interleave inside
    # it), then the most urgent: priority aged by waiting time, then the oldest.
    urgency = aged_rank_sql(rank_sql("priority"))
    row = db.execute(
        "SELECT block_id, task_id, lane, key, priority FROM outbox_blocks"  # noqa: S608 - fixed SQL
        f" WHERE lane = ? AND state = 'pending' AND NOT ({_WAITS_FOR_EARLIER_ITEM})"
        f" ORDER BY parts_sent > 0 DESC, {urgency}, block_id LIMIT 1",
        (lane, CONTENT_KEY, time.time()),
    ).fetchone()
    if row is None:
        return None
    block_id, task_id, lane, key, priority = row
    parts = [
        OutboxPart(block_id=block_id, seq=seq, content=content, msgtype=msgtype, sent_at=None)
        for seq, content, msgtype in db.execute(
            "SELECT seq, content, msgtype FROM outbox_parts WHERE block_id = ? AND sent_at IS NULL ORDER BY seq",
            (block_id,),
        )
    ]
    return OutboxBlock(block_id=block_id, task_id=task_id, lane=lane, key=key, parts=parts, priority=priority)


def mark_part_sent(db: sqlite3.Connection, block_id: int, seq: int) -> None:
    """Record that WeCom accepted the part; marking it again changes nothing."""
    marked = db.execute(
        "UPDATE outbox_parts SET sent_at = ? WHERE block_id = ? AND seq = ? AND sent_at IS NULL",
        (time.time(), block_id, seq),
    ).rowcount
    if marked == 0:
        if db.execute("SELECT 1 FROM outbox_parts WHERE block_id = ? AND seq = ?", (block_id, seq)).fetchone():
            return  # already marked: a retry after a lost reply
        sent = "SELECT 1 FROM outbox_blocks WHERE block_id = ? AND state = 'sent' AND ? < parts_total"
        if db.execute(sent, (block_id, seq)).fetchone():
            return  # marked, sent and compacted since (retention)
        raise KeyError(f"no outbox part {block_id}/{seq}")
    db.execute(
        "UPDATE outbox_blocks SET parts_sent = parts_sent + 1,"
        " state = CASE WHEN parts_sent + 1 >= parts_total AND state = 'pending' THEN 'sent' ELSE state END"
        " WHERE block_id = ?",
        (block_id,),
    )


def abandon_block(db: sqlite3.Connection, block_id: int, errcode: int | None, message: str) -> None:
    """Stop sending a block WeCom refused for good; its unsent parts stay unsent."""
    updated = db.execute(
        "UPDATE outbox_blocks SET state = 'abandoned', errcode = ?, message = ?"
        " WHERE block_id = ? AND state = 'pending'",
        (errcode, message, block_id),
    ).rowcount
    if updated == 0:
        block_progress(db, block_id)  # raises KeyError for an unknown block; a finished one stays as it is


def requeue_block(db: sqlite3.Connection, block_id: int) -> None:
    """Make a finished block pending again with every part unsent: it goes out again, whole."""
    db.execute("UPDATE outbox_parts SET sent_at = NULL WHERE block_id = ?", (block_id,))
    db.execute(
        "UPDATE outbox_blocks SET state = 'pending', parts_sent = 0, errcode = NULL, message = NULL WHERE block_id = ?",
        (block_id,),
    )


def stop_unsent_blocks(db: sqlite3.Connection, task_id: str, message: str) -> None:
    """Abandon the task's blocks that are still to send (a lane that is sending one finishes it)."""
    db.execute(
        "UPDATE outbox_blocks SET state = 'abandoned', message = ? WHERE task_id = ? AND state = 'pending'",
        (message, task_id),
    )


def drop_abandoned_blocks(db: sqlite3.Connection, task_id: str) -> None:
    """Delete the task's abandoned blocks (their parts go with them): a retry builds them anew."""
    db.execute("DELETE FROM outbox_blocks WHERE task_id = ? AND state = 'abandoned'", (task_id,))


def lanes_with_pending(db: sqlite3.Connection) -> list[str]:
    """Lanes with a block still to send, the longest-waiting first."""
    return [
        lane
        for (lane,) in db.execute(
            "SELECT lane FROM outbox_blocks WHERE state = 'pending' GROUP BY lane ORDER BY MIN(block_id)"
        )
    ]


def block_progress(db: sqlite3.Connection, block_id: int) -> tuple[int, int]:
    """(parts sent, parts total) of a block."""
    row = db.execute("SELECT parts_sent, parts_total FROM outbox_blocks WHERE block_id = ?", (block_id,)).fetchone()
    if row is None:
        raise KeyError(f"no outbox block {block_id}")
    return int(row[0]), int(row[1])


def find_block(db: sqlite3.Connection, task_id: str, key: str) -> tuple[int, int, int] | None:
    """(block id, parts sent, parts total) of the task's block with this key, if any."""
    row = db.execute(
        "SELECT block_id, parts_sent, parts_total FROM outbox_blocks WHERE task_id = ? AND key = ?", (task_id, key)
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


def task_blocks(db: sqlite3.Connection, task_id: str) -> list[OutboxBlock]:
    """Every block of a task with all its parts (sent or not), in block order."""
    blocks = []
    for block_id, lane, key, priority in db.execute(
        "SELECT block_id, lane, key, priority FROM outbox_blocks WHERE task_id = ? ORDER BY block_id", (task_id,)
    ).fetchall():
        parts = [
            OutboxPart(block_id=block_id, seq=seq, content=content, msgtype=msgtype, sent_at=sent_at)
            for seq, content, msgtype, sent_at in db.execute(
                "SELECT seq, content, msgtype, sent_at FROM outbox_parts WHERE block_id = ? ORDER BY seq", (block_id,)
            )
        ]
        blocks.append(
            OutboxBlock(block_id=block_id, task_id=task_id, lane=lane, key=key, parts=parts, priority=priority)
        )
    return blocks


class OutboxTable(Database):
    """The `outbox_blocks` and `outbox_parts` tables."""

    def add_block(self, task_id: str, lane: str, key: str, parts: list[tuple[str, str]]) -> int:
        """Queue a block of (content, msgtype) parts on a lane; idempotent on (task_id, key).
        TaskCancelled for a cancelled task: nothing more is sent for it."""
        with self._tx(write=True) as db:
            row = db.execute("SELECT priority, status FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
            if row is not None and row[1] == TaskStatus.CANCELLED:
                raise TaskCancelled(f"task {task_id} was cancelled")
            priority = Priority(row[0]) if row else Priority.NORMAL
            return add_block(db, task_id, lane, key, [(c, m) for c, m in parts], priority)

    def next_block(self, lane: str) -> OutboxBlock | None:
        """The block to send next on this lane (a started one first), with only its unsent parts."""
        with self._tx() as db:
            return next_block(db, lane)

    def mark_part_sent(self, block_id: int, seq: int) -> None:
        """Durably record that a part was delivered (committed before returning)."""
        with self._tx(write=True) as db:
            mark_part_sent(db, block_id, seq)

    def abandon_block(self, block_id: int, errcode: int | None, message: str) -> None:
        """Stop sending a block that WeCom refused for good."""
        with self._tx(write=True) as db:
            abandon_block(db, block_id, errcode, message)

    def lanes_with_pending(self) -> list[str]:
        """Lanes that have a block still to send."""
        with self._tx() as db:
            return lanes_with_pending(db)

    def block_progress(self, block_id: int) -> tuple[int, int]:
        """(parts sent, parts total) of a block; KeyError if unknown."""
        with self._tx() as db:
            return block_progress(db, block_id)

    def find_block(self, task_id: str, key: str) -> tuple[int, int, int] | None:
        """(block id, parts sent, parts total) of the task's block with this key, or None."""
        with self._tx() as db:
            return find_block(db, task_id, key)

    def task_blocks(self, task_id: str) -> list[OutboxBlock]:
        """All of a task's blocks with every part and its send mark (inspection, tests)."""
        with self._tx() as db:
            return task_blocks(db, task_id)
