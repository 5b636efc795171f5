"""The frames of WeCom's smart-robot long connection, as JSON text over a WebSocket.

Learnt from the official Node SDK (github.com/WecomTeam/aibot-node-sdk: `src/ws.ts` for
subscribe, heartbeat, acks and `disconnected_event`; `src/client.ts` for replies and
pushes; `src/types/api.ts`, `src/types/message.ts`, `src/types/event.ts` for the shapes)
and the doc "智能机器人长连接" (developer.work.weixin.qq.com/document/path/101463):

- every frame is `{"cmd", "headers": {"req_id"}, "body"}`; WeCom's answer to one of ours
  carries the same `req_id` and `errcode`/`errmsg` instead of a `cmd` (errcode 0: ok);
- ours: `aibot_subscribe` (body `bot_id`, `secret`), `ping`, `aibot_respond_msg` (the
  callback's own `req_id`), `aibot_send_msg` (body `chatid` + a markdown or file message),
  the temporary-file upload `aibot_upload_media_init` / `_chunk` / `_finish` (`src/client.ts`
  uploadMedia);
- theirs: `aibot_msg_callback` (a message that @-mentions the robot, or any message in a
  one-to-one chat) and `aibot_event_callback` (`disconnected_event`: another connection
  subscribed the same robot, this one is about to be closed; `enter_chat`: a member opened a
  one-to-one chat, answered with `aibot_respond_welcome_msg`, text only).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

SUBSCRIBE = "aibot_subscribe"
PING = "ping"
RESPOND = "aibot_respond_msg"
RESPOND_WELCOME = "aibot_respond_welcome_msg"  # to an enter_chat event: a text message only
SEND = "aibot_send_msg"
UPLOAD_INIT = "aibot_upload_media_init"  # body type, filename, total_size, total_chunks, md5 -> upload_id
UPLOAD_CHUNK = "aibot_upload_media_chunk"  # body upload_id, chunk_index, base64_data (512 KiB before base64)
UPLOAD_FINISH = "aibot_upload_media_finish"  # body upload_id -> media_id
MESSAGE_CALLBACK = "aibot_msg_callback"
EVENT_CALLBACK = "aibot_event_callback"
DISCONNECTED_EVENT = "disconnected_event"
ENTER_CHAT_EVENT = "enter_chat"  # a member opens a one-to-one chat with the robot (first time that day)
MAX_MARKDOWN_BYTES = 4096  # aibot_send_msg markdown content, UTF-8


def new_req_id(cmd: str) -> str:
    """A fresh request id, `<cmd>_<ms>_<random>` as the SDK makes them."""
    return f"{cmd}_{int(time.time() * 1000)}_{secrets.token_hex(4)}"


def encode(cmd: str, req_id: str, body: dict[str, Any] | None = None) -> str:
    frame: dict[str, Any] = {"cmd": cmd, "headers": {"req_id": req_id}}
    if body is not None:
        frame["body"] = body
    return json.dumps(frame, ensure_ascii=False)


def markdown_body(content: str) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": content}}


def text_body(content: str) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": content}}


def stream_body(stream_id: str, content: str, *, finish: bool = True) -> dict[str, Any]:
    """A `stream` answer to a message; `finish` closes it (the answer the SDK's replyStream sends)."""
    return {"msgtype": "stream", "stream": {"id": stream_id, "finish": finish, "content": content}}


@dataclass(frozen=True)
class Frame:
    """One frame from WeCom: a command (cmd set) or the answer to one of ours (errcode set)."""

    cmd: str
    req_id: str
    body: dict[str, Any]
    errcode: int | None
    errmsg: str

    @classmethod
    def parse(cls, raw: str | bytes) -> Frame:
        """ValueError when `raw` is not a frame."""
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("a frame is a JSON object")
        headers = data.get("headers") or {}
        body = data.get("body") or {}
        errcode = data.get("errcode")
        return cls(
            cmd=str(data.get("cmd") or ""),
            req_id=str(headers.get("req_id") or "") if isinstance(headers, dict) else "",
            body=body if isinstance(body, dict) else {},
            errcode=int(errcode) if isinstance(errcode, int | str) and str(errcode).lstrip("-").isdigit() else None,
            errmsg=str(data.get("errmsg") or ""),
        )

    @property
    def event_type(self) -> str:
        event = self.body.get("event")
        return str(event.get("eventtype") or "") if isinstance(event, dict) else ""


@dataclass(frozen=True)
class ChatMessage:
    """A message to the robot: who wrote what in which chat (the callback's own `req_id` answers it)."""

    req_id: str
    msgid: str
    chatid: str  # the group's chatid; in a one-to-one chat the member's userid (where pushes go)
    chattype: str  # "group" or "single"
    userid: str
    text: str

    @classmethod
    def of(cls, frame: Frame) -> ChatMessage:
        body = frame.body
        sender = body.get("from")
        userid = str(sender.get("userid") or "") if isinstance(sender, dict) else ""
        return cls(
            req_id=frame.req_id,
            msgid=str(body.get("msgid") or ""),
            chatid=str(body.get("chatid") or userid),
            chattype=str(body.get("chattype") or ("group" if body.get("chatid") else "single")),
            userid=userid,
            text=_text_of(body),
        )


def _text_of(body: dict[str, Any]) -> str:
    """The words of a text or mixed (text + images) message, and of a quoted one; "" for others."""
    texts: list[str] = []
    for holder in (body, body.get("quote")):
        if not isinstance(holder, dict):
            continue
        text = holder.get("text")
        if isinstance(text, dict):
            texts.append(str(text.get("content") or ""))
        mixed = holder.get("mixed")
        items = mixed.get("msg_item") if isinstance(mixed, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("text"), dict):
                texts.append(str(item["text"].get("content") or ""))
    return "\n".join(t for t in texts if t)
