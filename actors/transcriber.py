"""Transcriber deployment: the autoscaled pool that turns links into transcripts.

Each request is a work token: the replica claims the most urgent waiting task from
the Store (so priorities hold whatever order tokens arrive in) under a lease it keeps
renewing; if the replica dies, the lease runs out and the task is dispatched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from ray import serve
from ray.serve.handle import DeploymentHandle

from actors import media, metrics, tasklog
from actors.asr import SpeechRecognizer
from actors.errors import VidscribeError
from actors.models import PRE_LLM_STAGES
from actors.store import StoreClient
from actors.transcribe_job import TranscribeJob
from serve_app.settings import Settings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a task that killed three workers is failed, not retried forever


# Two requests per replica: one transcribes while the next one downloads; a third
# would only wait for the ASR slot while another replica could take it.
@serve.deployment(name="Transcriber", max_ongoing_requests=2, ray_actor_options={"num_cpus": 1})
class Transcriber:
    """One faster-whisper model per replica, loaded once."""

    def __init__(self, settings: Settings, store: DeploymentHandle, sender: DeploymentHandle) -> None:
        tasklog.install()
        self._store = StoreClient(store)
        self._sender = sender
        self._recognizer = SpeechRecognizer(settings.asr, settings.data_dir)
        media.warm_up()  # here, not in the first task of a freshly scaled-up replica
        self._owner = f"transcriber-{uuid.uuid4().hex[:12]}"
        self._lease_s = settings.recovery.lease_s
        on_asr = metrics.asr_observer(self._recognizer.device)
        self._job = TranscribeJob(self._store, settings, lambda: self._recognizer, asyncio.Semaphore(1), on_asr=on_asr)
        log.info("%s ready on %s (%s)", self._owner, self._recognizer.device, self._recognizer.compute_type)

    async def process(self) -> str | None:
        """Take the most urgent waiting task to the LLMSender; returns its id, or None."""
        task = await self._store.claim_next(self._owner, self._lease_s, PRE_LLM_STAGES)
        if task is None:
            return None
        tasklog.bind(task.task_id)  # every log line of this request carries the task id
        if task.attempts > MAX_ATTEMPTS:
            await self._store.fail_task(task.task_id, "too_many_attempts", "the task crashed its worker repeatedly")
            await self._sender.notify_failed.remote(task.task_id)
            return task.task_id
        renewal = asyncio.create_task(self._keep_lease(task.task_id))
        try:
            transcript = await self._job.run(task)
            log.info("task %s: transcript ready (%s, attempt %d)", task.task_id, transcript.source, task.attempts)
            await self._sender.enqueue.remote(task.task_id)
        except VidscribeError as error:
            log.info("task %s failed: %s", task.task_id, error)
            await self._store.fail_task(task.task_id, error.code, error.message)
            await self._sender.notify_failed.remote(task.task_id)
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            await self._store.release_task(task.task_id, self._owner)
        return task.task_id

    def counters(self) -> dict[str, int]:
        """How often this replica downloaded, ran ASR, fetched subtitles, hit the cache."""
        return dict(self._job.counters)

    async def _keep_lease(self, task_id: str) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            if not await self._store.renew_lease(task_id, self._owner, self._lease_s):
                log.warning("lost the lease on task %s", task_id)
