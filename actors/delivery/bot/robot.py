"""The smart robot as one piece: its connection, what it does with a message, how it pushes."""

from __future__ import annotations

from actors.delivery.bot import frames
from actors.delivery.bot.connection import BotConnection, StateObserver
from actors.delivery.bot.frames import ChatMessage
from actors.delivery.bot.intake import HELP, ChatIntake, ChatSubmitter, stream_id
from actors.delivery.bot.sender import BotSender
from actors.delivery.bot.settings import WeComBotSettings


class SmartRobot:
    """Connects on `start()`; answers each message with a finished `stream` reply; pushes with `sender`."""

    def __init__(
        self, settings: WeComBotSettings, submitter: ChatSubmitter, *, on_state: StateObserver | None = None
    ) -> None:
        self.connection = BotConnection(settings, self._on_message, on_state=on_state, on_enter=self._welcome)
        self.sender = BotSender(self.connection, settings)
        self._intake = ChatIntake(settings, submitter, self._answer)

    def start(self) -> None:
        self.connection.start()

    async def close(self) -> None:
        await self.connection.close()

    def status(self) -> dict[str, str]:
        """The connection's state and why (for health details)."""
        return {"state": self.connection.state.value, "reason": self.connection.reason}

    async def _on_message(self, message: ChatMessage) -> None:
        await self._intake.handle(message)

    async def _welcome(self, req_id: str) -> None:
        """A member opened a one-to-one chat: tell them what the robot does."""
        await self.connection.request(frames.RESPOND_WELCOME, frames.text_body(HELP), req_id=req_id)

    async def _answer(self, message: ChatMessage, content: str) -> None:
        body = frames.stream_body(stream_id(), content, finish=True)
        await self.connection.request(frames.RESPOND, body, req_id=message.req_id)
