"""Where a lane's messages go: a group robot's webhook (HTTP), or a chat of the smart robot
(its long connection) for lanes named `wecom-bot:<chatid>`."""

from __future__ import annotations

from actors.delivery.bot.sender import BotSender, chat_of
from actors.delivery.wecom import ERR_BAD_WEBHOOK, WeComClient
from actors.domain.errors import DeliveryError


class DeliveryTargets:
    """`send`/`send_file` by lane: the webhook client, or the smart robot for chat lanes."""

    def __init__(self, wecom: WeComClient, bot: BotSender | None) -> None:
        self._wecom = wecom
        self._bot = bot

    async def send(self, lane: str, content: str, msgtype: str) -> None:
        chatid = chat_of(lane)
        if chatid is None:
            await self._wecom.send(lane, content, msgtype)
        else:
            # Chat pushes are markdown; status notices ("text") are inert words, the same in markdown.
            await self._robot().send(chatid, content)

    async def send_file(self, lane: str, filename: str, data: bytes) -> None:
        chatid = chat_of(lane)
        if chatid is None:
            await self._wecom.send_file(lane, filename, data)
        else:
            await self._robot().send_file(chatid, filename, data)

    def _robot(self) -> BotSender:
        if self._bot is None:
            raise DeliveryError(
                "a chat of the WeCom smart robot, which is not configured (VIDSCRIBE_WECOM_BOT__BOT_ID)",
                ERR_BAD_WEBHOOK,
            )
        return self._bot
