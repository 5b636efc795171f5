"""The smart robot as one piece: its connection, what it does with a message, how it pushes."""

from __future__ import annotations

import contextlib
import logging

from actors.delivery.bot import frames
from actors.delivery.bot.connection import BotConnection, BotRefused, BotUnavailable, StateObserver
from actors.delivery.bot.frames import ChatMessage
from actors.delivery.bot.intake import HELP, ChatIntake, ChatSubmitter, LinkOutcome, stream_id
from actors.delivery.bot.progress import TaskStates, follow
from actors.delivery.bot.sender import BotSender
from actors.delivery.bot.settings import WeComBotSettings

log = logging.getLogger(__name__)


class SmartRobot:
    """Connects on `start()`; answers each message with a finished `stream` reply; pushes with `sender`."""

    def __init__(
        self,
        settings: WeComBotSettings,
        submitter: ChatSubmitter,
        *,
        on_state: StateObserver | None = None,
        states_of: TaskStates | None = None,
    ) -> None:
        """`states_of` reads a task's state for live progress in the answer (none without it)."""
        self._settings = settings
        self._states_of = states_of
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

    async def _answer(self, message: ChatMessage, content: str, outcomes: list[LinkOutcome]) -> None:
        stream = stream_id()  # one stream per answer: each update replaces its content
        sent: list[str] = []

        async def update(text: str, finish: bool) -> None:
            """The first and the last update wait out a reconnect once; one in between may be
            skipped (the next says more). A refusal ends the answer, not the message's work."""
            body = frames.stream_body(stream, text, finish=finish)
            for attempt in (1, 2):
                try:
                    await self.connection.request(frames.RESPOND, body, req_id=message.req_id)
                    sent.append(text)
                    return
                except BotUnavailable:
                    if attempt == 2 or (sent and not finish):
                        return
                    with contextlib.suppress(BotUnavailable):  # not back: the second try says so
                        await self.connection.wait_online()
                except BotRefused as error:
                    log.warning("WeCom smart robot: an answer was refused: %s", error)
                    return

        settings = self._settings
        if self._states_of is None or settings.progress_s <= 0 or all(o.task_id is None for o in outcomes):
            await update(content, True)
        else:
            await follow(content, outcomes, self._states_of, update, settings.progress_s, settings.progress_max_s)
