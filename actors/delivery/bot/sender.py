"""Pushing a chat lane's parts through the robot's connection (`aibot_send_msg`, markdown).

A chat is a delivery target like a webhook: its lane is `wecom-bot:<chatid>`, so the outbox
keeps each video's block contiguous and in order per chat, and resumes it after a crash
from the first unsent part. Each push waits for WeCom's answer; a connection that is down
is waited for (it reconnects by itself), so a short cut neither loses nor splits a block.
"""

from __future__ import annotations

import asyncio
import logging

from actors.delivery.bot import frames
from actors.delivery.bot.connection import BotConnection, BotRefused, BotUnavailable
from actors.delivery.bot.settings import WeComBotSettings
from actors.domain.errors import DeliveryError
from actors.util.ratelimit import RateLimiter

log = logging.getLogger(__name__)

LANE_PREFIX = "wecom-bot:"
ERR_BUSY, ERR_RATE_LIMITED, ERR_TOO_MANY_AT_ONCE = -1, 45009, 45033
RETRYABLE_ERRCODES = frozenset({ERR_BUSY, ERR_RATE_LIMITED, ERR_TOO_MANY_AT_ONCE})
ATTEMPTS = 6


def chat_lane(chatid: str) -> str:
    """The delivery lane (the task's `webhook`) of a chat."""
    return f"{LANE_PREFIX}{chatid}"


def chat_of(lane: str) -> str | None:
    """The chat id of a chat lane; None for a webhook lane."""
    return lane.removeprefix(LANE_PREFIX) if lane.startswith(LANE_PREFIX) else None


class BotSender:
    """Sends one markdown message to a chat once WeCom accepts it; DeliveryError otherwise
    (errcode None: may heal, the lane tries again later; an errcode: refused for good)."""

    def __init__(self, connection: BotConnection, settings: WeComBotSettings) -> None:
        self._connection = connection
        self._settings = settings
        self._limiter = RateLimiter(settings.rate_per_window, settings.window_s)

    async def send(self, chatid: str, content: str) -> None:
        body = {"chatid": chatid, **frames.markdown_body(content)}
        reason = ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                # Waiting for a reconnect is part of the attempt: a block resumes as soon as it is back.
                await self._connection.wait_online(self._settings.reconnect_max_s + self._settings.ack_timeout_s)
                async with self._limiter.slot(chatid):
                    await self._connection.request(frames.SEND, body)
                return
            except BotUnavailable as error:
                reason = str(error)
            except BotRefused as error:
                if error.errcode not in RETRYABLE_ERRCODES:
                    raise DeliveryError(f"WeCom refused the message: {error}", error.errcode) from None
                reason = str(error)
                if error.errcode == ERR_RATE_LIMITED:
                    self._limiter.hold(chatid, self._settings.window_s)
                else:
                    await asyncio.sleep(min(2.0**attempt, self._settings.window_s))
            log.warning("WeCom smart robot: push to a chat failed (%s); attempt %d/%d", reason, attempt, ATTEMPTS)
        raise DeliveryError(f"WeCom smart robot unavailable after {ATTEMPTS} attempts: {reason}")
