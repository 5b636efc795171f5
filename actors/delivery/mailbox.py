"""The LLMSender's mailbox: generate, then deliver in order (no Ray imports).

Proofreads and summarises up to K videos at once, then puts each video's block in
the durable outbox; delivery lanes send blocks strictly one after another per group.
On start-up it resumes every task that reached it and every unsent outbox part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from actors.delivery.blocks import content_parts, status_parts
from actors.delivery.bot.connection import StateObserver
from actors.delivery.bot.intake import ChatSubmitter
from actors.delivery.bot.robot import SmartRobot
from actors.delivery.bot.sender import chat_of
from actors.delivery.lanes import DeliveryLanes
from actors.delivery.targets import DeliveryTargets
from actors.delivery.wecom import WeComClient
from actors.domain.errors import DeliveryError, TaskCancelled
from actors.domain.outbox import CONTENT_KEY, OutboxBlock
from actors.domain.priority import PriorityGate
from actors.domain.task import LLM_STAGES, Delivery, TaskStatus
from actors.llm.client import LLMClient
from actors.llm.generation import UsageObserver, generate
from actors.settings import PipelineSettings
from actors.storage.client import StoreClient
from actors.util import tasklog

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 10.0


class Mailbox:
    """Mailbox for finished transcripts; `start()` begins recovery and sweeping."""

    def __init__(
        self,
        settings: PipelineSettings,
        store: StoreClient,
        *,
        on_wecom_event: Callable[[str], None] | None = None,
        on_llm_call: Callable[[str, float, bool], None] | None = None,
        on_block_parked: Callable[[DeliveryError], None] | None = None,
        on_llm_usage: UsageObserver | None = None,
        chat_submitter: ChatSubmitter | None = None,
        on_bot_state: StateObserver | None = None,
    ) -> None:
        """The `on_*` callbacks are for metrics: each WeCom attempt, each LLM call, each parked
        block, each LLM step's tokens, the smart robot's connection state. With the smart robot
        configured (wecom_bot), `chat_submitter` takes the links members send it."""
        self._settings = settings
        self._store = store
        self._llm = LLMClient(settings.llm, on_call=on_llm_call) if settings.llm.enabled else None
        self._on_llm_usage = on_llm_usage
        self._wecom = WeComClient(
            settings.wecom, trusted_webhooks=settings.operator_webhooks(), on_event=on_wecom_event
        )
        self._default_lane = settings.wecom.webhook_url.get_secret_value() if settings.wecom.webhook_url else None
        # K videos at the LLM at once; a freed slot goes to the most urgent waiting video.
        self._generation_slots = PriorityGate(settings.sender.generation_concurrency)
        self._generating: dict[str, asyncio.Task[None]] = {}
        self.robot = (
            SmartRobot(settings.wecom_bot, chat_submitter, on_state=on_bot_state, states_of=store.task_state)
            if settings.wecom_bot.enabled and chat_submitter is not None
            else None
        )
        self._lanes = DeliveryLanes(
            self._store,
            DeliveryTargets(self._wecom, self.robot.sender if self.robot is not None else None),
            self._block_done,
            park_after_s=settings.wecom.park_after_s,
            on_parked=on_block_parked,
        )
        if self._llm is None:
            log.warning("no LLM configured (VIDSCRIBE_LLM__BASE_URL): raw transcripts will be delivered")
        self._supervisor: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Resume unfinished work now and keep sweeping (call from a running loop)."""
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="mailbox-recovery")
            if self.robot is not None:
                self.robot.start()

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
        for task in self._generating.values():
            task.cancel()
        await self._lanes.close()
        if self.robot is not None:
            await self.robot.close()
        await self._wecom.aclose()
        if self._llm is not None:
            await self._llm.aclose()

    async def enqueue(self, task_id: str) -> None:
        """Accept a transcribed task; returns once that is durable."""
        task = await self._store.get_task(task_id)
        if task is None or task.status.finished:
            return
        if task.status not in LLM_STAGES:
            await self._store.update_task(task_id, status=TaskStatus.PROOFREADING, progress=0.0)
        self._start(task_id)

    async def notify_accepted(self, task_id: str) -> None:
        """Tell the group a link was accepted, with its view page (if notices.accepted)."""
        task = await self._store.get_task(task_id)
        lane = self._lane_of(task.webhook) if task else None
        if task is None or lane is None or not self._settings.notices.accepted:
            return
        await self._store.add_block(
            task_id, lane, "accepted", status_parts(f"已接收：{task.url}\n进度：{self._settings.view_url(task_id)}")
        )
        self._lanes.kick(lane)

    async def notify_failed(self, task_id: str) -> None:
        """Tell the group that a task failed (a status notice of its own, if notices.failed)."""
        task = await self._store.get_task(task_id)
        lane = self._lane_of(task.webhook) if task else None
        if task is None or lane is None or task.error is None or not self._settings.notices.failed:
            return
        title = task.video.title if task.video else task.url
        notice = f"处理失败：{title}\n原因：{task.error.message}（{task.error.code}）"
        await self._store.add_block(task_id, lane, "failed", status_parts(notice))
        self._lanes.kick(lane)

    def _lane_of(self, webhook: str | None) -> str | None:
        return webhook or self._default_lane

    def _start(self, task_id: str) -> None:
        running = self._generating.get(task_id)
        if running is None or running.done():
            self._generating[task_id] = asyncio.create_task(self._prepare(task_id), name="generate")

    async def _prepare(self, task_id: str) -> None:
        tasklog.bind(task_id)  # this asyncio task's log lines carry the task id
        try:
            task = await self._store.get_task(task_id)
            if task is None:
                return
            async with self._generation_slots.slot(task.priority, task.created_at):
                await self._prepare_block(task_id)
        except TaskCancelled:
            log.info("task %s: cancelled; nothing is sent for it", task_id)
        except Exception:
            # The task stays in its LLM stage; the next sweep picks it up again.
            log.exception("task %s: preparing the delivery failed", task_id)
        finally:
            self._generating.pop(task_id, None)

    async def _prepare_block(self, task_id: str) -> None:
        task = await self._store.get_task(task_id)
        if task is None or task.status.finished or task.transcript is None:
            return
        if task.status is not TaskStatus.DELIVERING:
            generated = await generate(task, self._llm, self._store, self._on_llm_usage)
            for failure in generated.failures:
                await self._store.add_warning(task_id, failure)
            lane = self._lane_of(task.webhook)
            if lane is None:
                await self._store.update_task(
                    task_id, status=TaskStatus.DONE, progress=1.0, delivery=Delivery(state="skipped")
                )
                return
            title = task.video.title if task.video else task.url
            if self._llm is None:
                notice = f"未配置 LLM：《{title}》未经校对与总结，按原始转录发送"
                await self._store.add_block(task_id, lane, "llm-off", status_parts(notice))
            view_url = self._settings.view_url(task_id) if self._settings.notices.view_links else None
            wecom = self._settings.wecom
            msgtype = wecom.msgtype if chat_of(lane) is None else "markdown"  # what the smart robot pushes
            parts = content_parts(
                task, generated.proofread, generated.summary, msgtype, view_url, wecom.attach_after_messages
            )
            await self._store.add_block(task_id, lane, CONTENT_KEY, parts)
            for index, failure in enumerate(generated.failures):
                await self._store.add_block(task_id, lane, f"llm-failed-{index}", status_parts(f"{failure}：{title}"))
            await self._store.update_task(
                task_id,
                status=TaskStatus.DELIVERING,
                progress=0.0,
                delivery=Delivery(state="sending", parts_total=len(parts)),
            )
        else:
            await self._finish_if_delivered(task_id)
        lane = self._lane_of(task.webhook)
        if lane is not None:
            self._lanes.kick(lane)

    async def _finish_if_delivered(self, task_id: str) -> None:
        # A crash between the last part's send mark and the task update leaves a
        # delivered task in DELIVERING; the send marks tell the truth.
        found = await self._store.find_block(task_id, CONTENT_KEY)
        if found is not None and found[1] == found[2]:
            await self._store.update_task(
                task_id,
                status=TaskStatus.DONE,
                progress=1.0,
                delivery=Delivery(state="sent", parts_total=found[2], parts_sent=found[1]),
            )

    async def _block_done(self, block: OutboxBlock, error: DeliveryError | None) -> None:
        with contextlib.suppress(TaskCancelled):  # cancelled while its last part went out
            await self._record_block_done(block, error)

    async def _record_block_done(self, block: OutboxBlock, error: DeliveryError | None) -> None:
        if error is not None:
            delivery = Delivery(state="failed", errcode=error.errcode, message=error.message)
            await self._store.update_task(block.task_id, delivery=delivery)
            if block.key == CONTENT_KEY:
                await self._store.fail_task(block.task_id, "delivery_failed", error.message)
            return
        if block.key == CONTENT_KEY:
            await self._finish_if_delivered(block.task_id)

    async def _supervise(self) -> None:
        """Resume work after a restart, then keep every lane and task moving."""
        while True:
            try:
                for task in await self._store.unfinished_tasks(LLM_STAGES):
                    self._start(task.task_id)
                for lane in await self._store.lanes_with_pending():
                    self._lanes.kick(lane)
            except Exception:
                log.warning("recovery sweep failed; retrying", exc_info=True)
            await asyncio.sleep(SWEEP_INTERVAL_S)
