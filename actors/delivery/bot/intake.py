"""A message to the smart robot becomes work: its links are submitted like API requests
(through the Gateway's submit path) with the chat as their delivery lane, and the message
is answered at once with what was accepted, or why not."""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

from pydantic import BaseModel

from actors.delivery.bot.frames import ChatMessage
from actors.delivery.bot.links import extract_links, strip_mention
from actors.delivery.bot.sender import chat_lane
from actors.delivery.bot.settings import WeComBotSettings
from actors.delivery.markup import inert

log = logging.getLogger(__name__)

REMEMBERED_MSGIDS = 2048  # WeCom redelivers an unanswered callback within seconds
SHOWN_LINK_CHARS = 80
SHOWN_REASON_CHARS = 60
ANSWER_BYTES = 3400  # below the 4096 bytes of an answer, with room for the last line and the progress

HELP = (
    "发我一个视频链接（B站、抖音、YouTube、小红书……，整段分享文字也行），我会把转录、校对和总结发到这里。\n"
    "一条消息里可以有多个链接。"
)
REFUSALS = {
    "invalid_url": "不是有效的链接",
    "forbidden_url": "不允许的地址",
    "queue_full": "排队的任务太多，请稍后再发",
    "rate_limited": "这个会话一分钟内发的链接太多，请稍后再发",
}


class LinkOutcome(BaseModel):
    """What became of one link: its task (new or already running), or why it was refused."""

    url: str
    task_id: str | None = None
    view_url: str | None = None
    existing: bool = False
    code: str | None = None
    message: str | None = None


class ChatSubmitter(Protocol):
    """The submit path (SSRF guard, limits, dedupe) for links that came from a chat."""

    async def submit_chat(self, links: list[str], lane: str) -> list[LinkOutcome]:
        """One outcome per link, in order; each accepted link's task is delivered to `lane`."""
        ...


Answer = Callable[[ChatMessage, str, list[LinkOutcome]], Awaitable[None]]  # the text, what became of the links


class ChatIntake:
    """Handles each message once (by msgid): submit its links, answer it."""

    def __init__(self, settings: WeComBotSettings, submitter: ChatSubmitter, answer: Answer) -> None:
        self._settings = settings
        self._submitter = submitter
        self._answer = answer
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def handle(self, message: ChatMessage) -> None:
        if message.msgid:
            if message.msgid in self._seen:
                log.info("WeCom smart robot: message %s delivered again; ignored", message.msgid)
                return
            self._seen[message.msgid] = None
            while len(self._seen) > REMEMBERED_MSGIDS:
                self._seen.popitem(last=False)
        await self._answer(message, *await self._reply_to(message))

    async def _reply_to(self, message: ChatMessage) -> tuple[str, list[LinkOutcome]]:
        allowed = self._settings
        if allowed.allowed_chats and message.chatid not in allowed.allowed_chats:
            return "这个会话没有开通视频转录，请联系管理员。", []
        if allowed.allowed_users and message.userid not in allowed.allowed_users:
            return "你还没有开通视频转录，请联系管理员。", []
        links = extract_links(strip_mention(message.text))
        if not links:
            return HELP, []
        try:
            outcomes = await self._submitter.submit_chat(links, chat_lane(message.chatid))
        except Exception:
            log.exception("WeCom smart robot: submitting the links of a message failed")
            return "暂时无法接收，请稍后再发一次。", []
        return answer_text(outcomes), outcomes


def answer_text(outcomes: list[LinkOutcome]) -> str:
    """The answer to a message: each link accepted (with its view page) or refused (why),
    within WeCom's 4096 bytes whatever the links and reasons."""
    accepted = [o for o in outcomes if o.task_id is not None]
    lines = [f"已接收 {len(accepted)} 个链接，完成后发到这里："] if accepted else []
    size = sum(len(line.encode()) + 1 for line in lines)
    for shown, outcome in enumerate(outcomes):
        line = _line(outcome)
        size += len(line.encode()) + 1
        if size > ANSWER_BYTES:
            lines.append(f"……另有 {len(outcomes) - shown} 个链接未列出")
            break
        lines.append(line)
    return "\n".join(lines)


def _line(outcome: LinkOutcome) -> str:
    link = inert(_shortened(outcome.url, SHOWN_LINK_CHARS))
    if outcome.task_id is not None:
        state = "（已在处理中）" if outcome.existing else ""
        return f"- {link}{state} [查看进度]({outcome.view_url})"
    why = REFUSALS.get(outcome.code or "") or inert(_shortened(outcome.message or "无法处理", SHOWN_REASON_CHARS))
    return f"- 未接收 {link}：{why}"


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def stream_id() -> str:
    return secrets.token_hex(8)
