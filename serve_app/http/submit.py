"""Accepting a link: check it, choose its WeCom group, persist it (one Store round trip shared
with concurrent submissions) and hand the Transcriber pool a work token. A playlist link
with `options.playlist_items` becomes one task per item, in item order (one series).

Plain code the Gateway's routes call; tests drive it with the FastAPI app and a local Store.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Protocol

from actors.delivery.bot.intake import LinkOutcome
from actors.domain.errors import VidscribeError
from actors.domain.task import Submission, TaskOptions, TaskRecord
from actors.net.urlguard import check_url
from actors.storage.client import StoreClient
from actors.storage.tasks import QueueFull
from actors.util.ratelimit import RateLimiter
from serve_app.http.errors import ApiError
from serve_app.http.group_commit import GroupCommit
from serve_app.http.schemas import SubmitOptions, SubmitRequest, item_numbers
from serve_app.settings import Settings

RETRY_AFTER_S = 30


class WorkQueue(Protocol):
    """Where accepted work goes: the Transcriber pool and the LLMSender."""

    def dispatch(self) -> None:
        """Hand the Transcriber pool one work token (fire and forget: the Store tracks the task)."""

    def announce(self, task_id: str) -> None:
        """Tell the task's group it was accepted (fire and forget: a notice, not work)."""


class Submitter:
    """`await submitter.submit(body, client)` -> [(a task, whether it is new)], one per playlist item."""

    def __init__(self, settings: Settings, store: StoreClient, work: WorkQueue) -> None:
        self._settings = settings
        self._store = store
        self._work = work
        # A chat's links count against rate_limit_per_minute as a token's submissions do.
        per_minute = settings.rate_limit_per_minute
        self._chat_rate = RateLimiter(per_minute, 60.0) if per_minute > 0 else None
        self._create: GroupCommit[Submission, tuple[TaskRecord, bool] | QueueFull] = GroupCommit(
            lambda batch: store.create_tasks(batch, max_unfinished=settings.max_queued_tasks)
        )

    async def submit(
        self, body: SubmitRequest, client: str | None, *, lane: str | None = None
    ) -> list[tuple[TaskRecord, bool]]:
        """Accept the link (or return its running task): one task, or one per asked playlist item,
        in item order. InvalidURL/ForbiddenURL, or a 422/429 ApiError otherwise. `lane`: deliver
        to it instead of the client's group (a chat of the smart robot)."""
        url = check_url(
            body.url.strip(),
            allow_private=self._settings.allow_private_urls,
            max_length=self._settings.max_url_length,
            resolve=False,  # DNS is checked by the worker; the gateway answers in milliseconds
        )
        webhook = lane or self.webhook_for(client, body.options.webhook_url)
        options = TaskOptions.model_validate(body.options.model_dump(exclude={"webhook_url", "playlist_items"}))
        submissions = [
            Submission(url=url, options=item_options, client=client, webhook=webhook)
            for item_options in self._per_item(options, body.options.playlist_items)
        ]
        # Dedupe, bound the queue, create: one Store round trip shared with concurrent submissions
        # (a request's items are queued in order, so they are created in order).
        accepted = await asyncio.gather(*(self._create(submission) for submission in submissions))
        created = [result for result in accepted if not isinstance(result, QueueFull)]
        for task, new in created:
            if new:
                self._work.dispatch()
                if self._settings.notices.accepted and lane is None:  # a chat's robot answered already
                    self._work.announce(task.task_id)
        full = next((result for result in accepted if isinstance(result, QueueFull)), None)
        if full is not None:
            # Items already accepted stay; sending the same request again returns them (dedupe).
            raise ApiError(429, full.code, full.message, {"Retry-After": str(RETRY_AFTER_S)})
        return created

    async def submit_chat(self, links: list[str], lane: str) -> list[LinkOutcome]:
        """Links a member sent the smart robot: each checked and accepted like an API request,
        delivered to the chat's lane; one outcome per link, in order."""
        outcomes: list[LinkOutcome] = []
        for url in links:
            if self._chat_rate is not None and self._chat_rate.hit(lane) is not None:
                message = f"more than {self._chat_rate.limit} links a minute from this chat"
                outcomes.append(LinkOutcome(url=url, code="rate_limited", message=message))
                continue
            request = SubmitRequest.model_construct(url=url, options=SubmitOptions())
            try:
                # The chat is the client: a link runs once per chat, and its block goes to each chat that asked.
                task, new = (await self.submit(request, lane, lane=lane))[0]
            except (VidscribeError, ApiError) as error:
                outcomes.append(LinkOutcome(url=url, code=error.code, message=error.message))
                continue
            view_url = self._settings.view_url(task.task_id)
            outcomes.append(LinkOutcome(url=url, task_id=task.task_id, view_url=view_url, existing=not new))
        return outcomes

    async def retry(self, task_id: str) -> bool:
        """Queue a failed or cancelled task again and hand the pool a token for it; False when
        the task is neither."""
        if not await self._store.retry(task_id):
            return False
        self._work.dispatch()
        return True

    def _per_item(self, options: TaskOptions, playlist_items: str | None) -> list[TaskOptions]:
        """`options` as is, or one copy per asked item, all of one series (delivered in order)."""
        if playlist_items is None:
            return [options]
        try:
            numbers = item_numbers(playlist_items, self._settings.media.max_playlist_items)
        except ValueError as e:
            raise ApiError(422, "invalid_request", str(e)) from e
        series = secrets.token_urlsafe(12)
        return [options.model_copy(update={"playlist_item": n, "series": series}) for n in numbers]

    def webhook_for(self, client: str | None, requested: str | None) -> str | None:
        """The task's WeCom lane: the request's own webhook (checked), else its client's, else
        None (the default group)."""
        wecom = self._settings.wecom
        if requested is not None:
            return check_url(
                requested,
                allow_private=wecom.allow_private_webhooks,
                allowed_hosts=wecom.allowed_webhook_hosts,
                resolve=False,  # the WeCom client checks the address it connects to
            )
        configured = self._settings.clients[client].webhook_url if client is not None else None
        return configured.get_secret_value() if configured is not None else None
