"""Ordered delivery to WeCom: one lane per webhook, one block at a time.

Plain module (no Ray). The outbox in the Store is the mailbox: a lane sends the
unsent parts of its next block in sequence order and marks each part sent as soon as
WeCom accepts it, so after a crash the block resumes from its first unsent part and
no other message can slip inside it. A file part is marked sent only once its `file`
message is accepted; an upload whose message never went out is simply done again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from actors import tasklog
from actors.errors import DeliveryError
from actors.records import OutboxBlock, OutboxPart, TaskRecord
from actors.wecom import BlockKind, WeComClient, render_parts, render_status

log = logging.getLogger(__name__)

Part = tuple[str, str]  # (content, msgtype)
FILE_MSGTYPE = "file"  # a part whose content is an Attachment as JSON
FILENAME_MAX_CHARS = 60
_UNSAFE_IN_FILENAME = re.compile(r"[^\w.-]+")


class Attachment(BaseModel):
    """A text sent as a file: uploaded to WeCom, then posted as a `file` message."""

    filename: str
    text: str


def attachment_name(title: str, kind: BlockKind) -> str:
    """`<title>-校对.txt`: letters, digits, `_`, `-` and `.` only, the title part bounded."""
    stem = _UNSAFE_IN_FILENAME.sub("_", title)[:FILENAME_MAX_CHARS].strip("._")
    return f"{stem or 'video'}-{kind}.txt"


def content_parts(
    task: TaskRecord,
    proofread: str | None,
    summary: str | None,
    msgtype: str,
    view_url: str | None = None,
    attach_after: int = 0,
) -> list[Part]:
    """The task's content block: proofread parts then summary parts (or the raw transcript),
    the last message ending with the link to the task's view page when there is one.

    A text that would take more than `attach_after` messages (0: no limit) goes as one file
    part at the end of the block instead, announced by the summary (or a 1/1 note).
    """
    assert task.transcript is not None
    title = task.video.title if task.video else task.url
    link = (
        ""
        if view_url is None
        else f"\n\n[查看全文]({view_url})"
        if msgtype == "markdown"
        else f"\n\n查看全文：{view_url}"
    )
    main_kind, main_text = (
        (BlockKind.PROOFREAD, proofread) if proofread is not None else (BlockKind.TRANSCRIPT, task.transcript.text)
    )
    body = render_parts(main_kind, title, main_text + (link if summary is None else ""), msgtype)
    attached: list[Part] = []
    if 0 < attach_after < len(body):  # it would flood the group: one file instead
        attachment = Attachment(filename=attachment_name(title, main_kind), text=main_text)
        attached = [(attachment.model_dump_json(), FILE_MSGTYPE)]
        note = f"全文共 {len(main_text)} 字，见附件 {attachment.filename}"
        body = [] if summary is not None else render_parts(main_kind, title, note + link, msgtype)
        summary = None if summary is None else f"{summary}\n\n{note}"
    if summary is not None:
        body += render_parts(BlockKind.SUMMARY, title, summary + link, msgtype)
    return [(content, msgtype) for content in body] + attached


def status_parts(text: str) -> list[Part]:
    """A status notice: a block of its own, never inside a content block."""
    return [(render_status(text), "text")]


TRANSIENT_ERRCODES = {None, -1, 45009}  # busy, rate limited, network / 5xx


def is_permanent(error: DeliveryError) -> bool:
    """40058 (too long), 93000 (bad webhook) and other codes will not heal by waiting."""
    return error.errcode not in TRANSIENT_ERRCODES


BlockDone = Callable[[OutboxBlock, DeliveryError | None], Awaitable[None]]


class DeliveryLanes:
    """Runs one sender loop per webhook; groups proceed in parallel, each strictly serial."""

    def __init__(self, store: Any, wecom: WeComClient, on_block_done: BlockDone) -> None:
        self._store = store
        self._wecom = wecom
        self._on_block_done = on_block_done
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self.outage_retry_s = 30.0

    def kick(self, lane: str) -> None:
        """Make sure the lane's loop runs and looks at the outbox again."""
        self._wakeups.setdefault(lane, asyncio.Event()).set()
        running = self._lanes.get(lane)
        if running is None or running.done():
            self._lanes[lane] = asyncio.create_task(self._run(lane), name="wecom-lane")

    async def _run(self, lane: str) -> None:
        wakeup = self._wakeups[lane]
        while True:
            wakeup.clear()
            block = await self._store.next_block(lane)
            if block is None:
                if not wakeup.is_set():
                    return  # idle; the next kick starts a fresh loop
                continue
            await self._send_block(block)

    async def _send_block(self, block: OutboxBlock) -> None:
        tasklog.bind(block.task_id)  # the lane's log lines carry the task of the block it sends
        for part in block.parts:
            while True:
                try:
                    await self._deliver(block.lane, part)
                    break
                except DeliveryError as error:
                    if not is_permanent(error):
                        # WeCom busy or unreachable for a while: the block waits, whole.
                        log.warning("task %s: WeCom unavailable (%s), retrying", block.task_id, error)
                        await asyncio.sleep(self.outage_retry_s)
                        continue
                    log.error("task %s: delivery refused: %s", block.task_id, error)
                    await self._store.abandon_block(block.block_id, error.errcode, error.message)
                    await self._on_block_done(block, error)
                    return
            await self._store.mark_part_sent(block.block_id, part.seq)
        await self._on_block_done(block, None)

    async def _deliver(self, lane: str, part: OutboxPart) -> None:
        if part.msgtype == FILE_MSGTYPE:
            # Uploaded again on every try: only the accepted `file` message marks the part sent.
            attachment = Attachment.model_validate_json(part.content)
            await self._wecom.send_file(lane, attachment.filename, attachment.text.encode())
        else:
            await self._wecom.send(lane, part.content, part.msgtype)

    async def close(self) -> None:
        for task in self._lanes.values():
            task.cancel()
        await asyncio.gather(*self._lanes.values(), return_exceptions=True)
