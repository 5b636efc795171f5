"""LLMSender deployment: the single writer to WeCom, a thin shell around `Mailbox`. With the
smart robot configured it also holds the robot's one long connection (a singleton: a second
subscribe would take the robot from the first)."""

from __future__ import annotations

from ray import serve
from ray.serve.handle import DeploymentHandle

from actors import metrics
from actors.delivery.bot.intake import LinkOutcome
from actors.delivery.mailbox import Mailbox
from actors.settings import PipelineSettings
from actors.storage.client import HandleStoreClient
from actors.util import tasklog

GATEWAY = "Gateway"  # the ingress deployment's name in the Serve config


class GatewayChatSubmitter:
    """Links from a chat go through the Gateway's own submit path (SSRF guard, limits, dedupe).

    The Gateway is bound after the LLMSender (it holds the LLMSender's handle), so its handle
    is looked up by name, in this replica's application, at first use."""

    def __init__(self) -> None:
        self._gateway: DeploymentHandle | None = None

    async def submit_chat(self, links: list[str], lane: str) -> list[LinkOutcome]:
        if self._gateway is None:
            self._gateway = serve.get_deployment_handle(GATEWAY, app_name=serve.get_replica_context().app_name)
        outcomes: list[LinkOutcome] = await self._gateway.submit_chat.remote(links, lane)
        return outcomes


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
            chat_submitter=GatewayChatSubmitter(),
            on_bot_state=metrics.wecom_bot_state,
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

    async def robot_status(self) -> dict[str, str] | None:
        """The smart robot's connection state and why; None when it is not configured."""
        robot = self._mailbox.robot
        return robot.status() if robot is not None else None
