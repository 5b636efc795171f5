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
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from actors.delivery.blocks import FILE_MSGTYPE, Attachment
from actors.delivery.wecom import is_permanent
from actors.domain.errors import DeliveryError
from actors.domain.outbox import OutboxBlock, OutboxPart
from actors.storage.client import StoreClient
from actors.util import tasklog

log = logging.getLogger(__name__)

BlockDone = Callable[[OutboxBlock, DeliveryError | None], Awaitable[None]]


class Sender(Protocol):
    """Delivers to a lane (`DeliveryTargets`: a webhook, or a chat of the smart robot)."""

    async def send(self, lane: str, content: str, msgtype: str) -> None: ...

    async def send_file(self, lane: str, filename: str, data: bytes) -> None: ...


class DeliveryLanes:
    """Runs one sender loop per webhook; groups proceed in parallel, each strictly serial.

    A block that keeps failing with transient errors for `park_after_s` (or at once with a
    permanent one) is parked: marked abandoned with the last error, so the lane goes on
    with the group's next block instead of waiting behind it forever.
    """

    def __init__(
        self,
        store: StoreClient,
        wecom: Sender,
        on_block_done: BlockDone,
        *,
        park_after_s: float = 1800.0,
        on_parked: Callable[[DeliveryError], None] | None = None,
    ) -> None:
        self._store = store
        self._wecom = wecom
        self._on_block_done = on_block_done
        self._on_parked = on_parked
        self._park_after_s = park_after_s
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
            failing_since: float | None = None
            while True:
                try:
                    await self._deliver(block.lane, part)
                    break
                except DeliveryError as error:
                    now = time.monotonic()
                    if is_permanent(error):
                        await self._park(block, error)
                        return
                    if failing_since is None:  # logged once per outage, not on every retry
                        failing_since = now
                        log.warning(
                            "task %s: WeCom unavailable (%s); retrying, parking the block after %.0f s",
                            block.task_id,
                            error,
                            self._park_after_s,
                        )
                    elif now - failing_since >= self._park_after_s:
                        failed_for = f"WeCom kept failing for {now - failing_since:.0f} s: {error.message}"
                        await self._park(block, DeliveryError(failed_for, error.errcode))
                        return
                    await asyncio.sleep(min(self.outage_retry_s, self._park_after_s))
            await self._store.mark_part_sent(block.block_id, part.seq)
        await self._on_block_done(block, None)

    async def _park(self, block: OutboxBlock, error: DeliveryError) -> None:
        log.error("task %s: block %s parked: %s", block.task_id, block.key, error)
        await self._store.abandon_block(block.block_id, error.errcode, error.message)
        if self._on_parked is not None:
            self._on_parked(error)
        await self._on_block_done(block, error)

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
