"""Transcriber deployment: the autoscaled pool that turns links into transcripts.

A thin shell: one faster-whisper model per replica, loaded once, and a
`TranscribeWorker` that runs one work token per request (see actors/speech/worker.py).
"""

from __future__ import annotations

import asyncio
import logging

from ray.serve.handle import DeploymentHandle

from actors import media, metrics
from actors.settings import PipelineSettings
from actors.speech.job import TranscribeJob
from actors.speech.recognizer import SpeechRecognizer
from actors.speech.worker import TranscribeWorker
from actors.storage.client import HandleStoreClient
from actors.util import tasklog

log = logging.getLogger(__name__)


class SenderHandoff:
    """The LLMSender deployment as the worker's hand-off."""

    def __init__(self, sender: DeploymentHandle) -> None:
        self._sender = sender

    async def enqueue(self, task_id: str) -> None:
        await self._sender.enqueue.remote(task_id)

    async def notify_failed(self, task_id: str) -> None:
        await self._sender.notify_failed.remote(task_id)


class Transcriber:
    """One faster-whisper model per replica, loaded once."""

    def __init__(self, settings: PipelineSettings, store: DeploymentHandle, sender: DeploymentHandle) -> None:
        tasklog.install()
        self._recognizer = SpeechRecognizer(settings.asr, settings.data_dir)
        media.warm_up()  # here, not in the first task of a freshly scaled-up replica
        store_client = HandleStoreClient(store)
        on_asr = metrics.asr_observer(self._recognizer.device)
        self._job = TranscribeJob(store_client, settings, lambda: self._recognizer, asyncio.Semaphore(1), on_asr=on_asr)
        self._worker = TranscribeWorker(
            store_client, self._job, SenderHandoff(sender), lease_s=settings.recovery.lease_s
        )
        log.info("%s ready on %s (%s)", self._worker.owner, self._recognizer.device, self._recognizer.compute_type)

    async def process(self) -> str | None:
        """Take the most urgent waiting task to the LLMSender; returns its id, or None."""
        return await self._worker.process()

    def counters(self) -> dict[str, int]:
        """How often this replica downloaded, ran ASR, fetched subtitles, hit the cache."""
        return dict(self._job.counters)
