"""Ordered delivery to WeCom: one lane per webhook, one block at a time.

Plain module (no Ray). The outbox in the Store is the mailbox: a lane sends the
unsent parts of its next block in sequence order and marks each part sent as soon as
WeCom accepts it, so after a crash the block resumes from its first unsent part and
no other message can slip inside it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from actors import tasklog
from actors.errors import DeliveryError
from actors.records import OutboxBlock, TaskRecord
from actors.wecom import BlockKind, WeComClient, render_parts, render_status

log = logging.getLogger(__name__)

Part = tuple[str, str]  # (content, msgtype)


def content_parts(
    task: TaskRecord, proofread: str | None, summary: str | None, msgtype: str, view_url: str | None = None
) -> list[Part]:
    """The task's content block: proofread parts then summary parts (or the raw transcript),
    the last part ending with the link to the task's view page when there is one."""
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
    if summary is None:
        main_text += link
    body = render_parts(main_kind, title, main_text, msgtype)
    if summary is not None:
        body += render_parts(BlockKind.SUMMARY, title, summary + link, msgtype)
    return [(content, msgtype) for content in body]


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
                    await self._wecom.send(block.lane, part.content, part.msgtype)
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

    async def close(self) -> None:
        for task in self._lanes.values():
            task.cancel()
        await asyncio.gather(*self._lanes.values(), return_exceptions=True)
