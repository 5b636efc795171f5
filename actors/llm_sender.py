"""LLMSender deployment: the single writer to WeCom, a thin shell around `Mailbox`."""

from __future__ import annotations

from ray.serve.handle import DeploymentHandle

from actors import metrics
from actors.delivery.mailbox import Mailbox
from actors.settings import PipelineSettings
from actors.storage.client import HandleStoreClient
from actors.util import tasklog


class LLMSender:
    """Mailbox for finished transcripts: generate, then deliver in order."""

    async def __init__(self, settings: PipelineSettings, store: DeploymentHandle) -> None:  # type: ignore[misc]  # Serve awaits it
        tasklog.install()
        self._mailbox = Mailbox(
            settings,
            HandleStoreClient(store),
            on_wecom_event=metrics.wecom_event,
            on_llm_call=metrics.llm_call,
            on_block_parked=metrics.block_parked,
            on_llm_usage=metrics.llm_tokens,
        )
        self._mailbox.start()

    async def enqueue(self, task_id: str) -> None:
        """Accept a transcribed task; returns once that is durable."""
        await self._mailbox.enqueue(task_id)

    async def notify_accepted(self, task_id: str) -> None:
        """Send the group a status notice that the link was accepted (if enabled)."""
        await self._mailbox.notify_accepted(task_id)

    async def notify_failed(self, task_id: str) -> None:
        """Send the group a status notice that the task failed."""
        await self._mailbox.notify_failed(task_id)
