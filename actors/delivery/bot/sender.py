"""Pushing a chat lane's parts through the robot's connection (`aibot_send_msg`, markdown).

A chat is a delivery target like a webhook: its lane is `wecom-bot:<chatid>`, so the outbox
keeps each video's block contiguous and in order per chat, and resumes it after a crash
from the first unsent part. Each push waits for WeCom's answer; a connection that is down
is waited for (it reconnects by itself), so a short cut neither loses nor splits a block.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable

from actors.delivery.bot import frames
from actors.delivery.bot.connection import BotConnection, BotRefused, BotUnavailable
from actors.delivery.bot.settings import WeComBotSettings
from actors.delivery.wecom import ERR_RATE_LIMITED, RETRYABLE_ERRCODES, check_file_size
from actors.domain.errors import DeliveryError
from actors.util.ratelimit import RateLimiter

log = logging.getLogger(__name__)

LANE_PREFIX = "wecom-bot:"
ATTEMPTS = 6
CHUNK_BYTES = 512 * 1024  # of a file, before base64 (as the SDK's uploadMedia)


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
        await self._retrying(chatid, lambda: self._push(chatid, body))

    async def send_file(self, chatid: str, filename: str, data: bytes) -> None:
        """Upload `data` as a temporary file (init, chunks, finish), then push it as a `file`
        message; a failed try uploads again (a media id is only good for the message it was made for)."""
        check_file_size(data)  # the webhook's bounds, which the long connection shares

        async def upload_and_push() -> None:
            media_id = await self._upload(filename, data)
            await self._push(chatid, {"chatid": chatid, "msgtype": "file", "file": {"media_id": media_id}})

        await self._retrying(chatid, upload_and_push)

    async def _push(self, chatid: str, body: dict[str, object]) -> None:
        async with self._limiter.slot(chatid):
            await self._connection.request(frames.SEND, body)

    async def _upload(self, filename: str, data: bytes) -> str:
        chunks = math.ceil(len(data) / CHUNK_BYTES)
        init = {
            "type": "file",
            "filename": filename,
            "total_size": len(data),
            "total_chunks": chunks,
            "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        }
        upload_id = (await self._connection.request(frames.UPLOAD_INIT, init)).body.get("upload_id")
        if not upload_id:
            raise BotUnavailable("WeCom answered the upload without an upload_id")
        for index in range(chunks):
            chunk = base64.b64encode(data[index * CHUNK_BYTES : (index + 1) * CHUNK_BYTES]).decode()
            await self._connection.request(
                frames.UPLOAD_CHUNK, {"upload_id": upload_id, "chunk_index": index, "base64_data": chunk}
            )
        media_id = (await self._connection.request(frames.UPLOAD_FINISH, {"upload_id": upload_id})).body.get("media_id")
        if not media_id:
            raise BotUnavailable("WeCom finished the upload without a media_id")
        return str(media_id)

    async def _retrying(self, chatid: str, attempt: Callable[[], Awaitable[None]]) -> None:
        reason = ""
        for number in range(1, ATTEMPTS + 1):
            try:
                # Waiting for a reconnect is part of the attempt: a block resumes as soon as it is back.
                await self._connection.wait_online()
                await attempt()
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
                    await asyncio.sleep(min(2.0**number, self._settings.window_s))
            log.warning("WeCom smart robot: push to a chat failed (%s); attempt %d/%d", reason, number, ATTEMPTS)
        raise DeliveryError(f"WeCom smart robot unavailable after {ATTEMPTS} attempts: {reason}")
