"""A Transcriber replica's loop for one work token: claim the most urgent waiting task
under a lease, keep renewing it while the job runs, then hand the task on.

Plain module (no Ray): each request to the Transcriber deployment is one work token, so
priorities hold whatever order tokens arrive in; if the replica dies, its lease runs out
and the task is dispatched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Protocol

from actors.domain.errors import TaskCancelled, VidscribeError
from actors.domain.task import PRE_LLM_STAGES
from actors.speech.job import TranscribeJob
from actors.storage.client import StoreClient
from actors.util import tasklog

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a task that killed three workers is failed, not retried forever


class Handoff(Protocol):
    """Where a task goes once the Transcriber is done with it (the LLMSender)."""

    async def enqueue(self, task_id: str) -> None:
        """The transcript is stored: proofread, summarise and deliver it."""

    async def notify_failed(self, task_id: str) -> None:
        """The task failed: tell the group."""


class TranscribeWorker:
    """Runs `TranscribeJob` on claimed tasks, one claim per `process()` call."""

    def __init__(self, store: StoreClient, job: TranscribeJob, handoff: Handoff, *, lease_s: float) -> None:
        self._store = store
        self._job = job
        self._handoff = handoff
        self._lease_s = lease_s
        self.owner = f"transcriber-{uuid.uuid4().hex[:12]}"

    async def process(self) -> str | None:
        """Take the most urgent waiting task to the hand-off; returns its id, or None."""
        task = await self._store.claim_next(self.owner, self._lease_s, PRE_LLM_STAGES)
        if task is None:
            return None
        tasklog.bind(task.task_id)  # every log line of this request carries the task id
        if task.attempts > MAX_ATTEMPTS:
            await self._store.fail_task(task.task_id, "too_many_attempts", "the task crashed its worker repeatedly")
            await self._handoff.notify_failed(task.task_id)
            return task.task_id
        renewal = asyncio.create_task(self._keep_lease(task.task_id))
        try:
            transcript = await self._job.run(task)
            log.info("task %s: transcript ready (%s, attempt %d)", task.task_id, transcript.source, task.attempts)
            await self._handoff.enqueue(task.task_id)
        except TaskCancelled:
            log.info("task %s: cancelled; stopped", task.task_id)
        except VidscribeError as error:
            log.info("task %s failed: %s", task.task_id, error)
            await self._store.fail_task(task.task_id, error.code, error.message)
            await self._handoff.notify_failed(task.task_id)
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            await self._store.release_task(task.task_id, self.owner)
        return task.task_id

    async def _keep_lease(self, task_id: str) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            if not await self._store.renew_lease(task_id, self.owner, self._lease_s):
                log.warning("lost the lease on task %s", task_id)
