"""LLMSender deployment: the single writer to WeCom, a thin shell around `Mailbox`."""

from __future__ import annotations

from ray import serve
from ray.serve.handle import DeploymentHandle

from actors import metrics, tasklog
from actors.mailbox import Mailbox
from actors.store import StoreClient
from serve_app.settings import Settings


# One replica: the single writer that makes per-group order possible. Calls are
# short (enqueue returns once the job is durable), so many may be in flight.
@serve.deployment(name="LLMSender", num_replicas=1, max_ongoing_requests=1000)
class LLMSender:
    """Mailbox for finished transcripts: generate, then deliver in order."""

    async def __init__(self, settings: Settings, store: DeploymentHandle) -> None:  # type: ignore[misc]  # Serve awaits it
        tasklog.install()
        self._mailbox = Mailbox(
            settings, StoreClient(store), on_wecom_event=metrics.wecom_event, on_llm_call=metrics.llm_call
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
