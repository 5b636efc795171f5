"""Pytest plugin: a local stand-in of WeCom's smart-robot long-connection server, over TLS
with its own CA (trustme), on a background thread.

Written from the official Node SDK (WecomTeam/aibot-node-sdk: `src/ws.ts`, `src/client.ts`,
`src/types/api.ts`, `src/types/message.ts`, `src/types/event.ts`): every frame is
`{"cmd", "headers": {"req_id"}, "body"}`, every frame of the client is answered with
`{"headers": {"req_id"}, "errcode", "errmsg"}`. What it enforces:

- `aibot_subscribe` with a known bot_id and its secret -> 0; anything else -> 40001
  (invalid secret); the connection stays open, as a refused client closes it itself;
- a new subscribe for a bot that has a connection: the old one gets an
  `aibot_event_callback` with `disconnected_event` and is closed (one connection per robot);
- any other frame before a subscribe -> 40002 (not subscribed); a frame without req_id or
  not JSON -> 40003; an unknown cmd -> 40004 (these codes are the stand-in's own: the SDK
  treats every errcode other than 0 alike);
- `ping` -> 0 (unless `ack_pings` is False: no answer at all);
- `aibot_respond_msg` only with the req_id of a callback delivered to that robot (40005
  otherwise; an answer may come on a later connection of the robot: an assumption, the SDK
  does not say), msgtype stream or markdown; a stream may be updated (same id) until it
  is sent with `finish` (40005 after); `aibot_respond_welcome_msg` likewise, to an
  `enter_chat` event (`server.enter(userid)`), msgtype text only;
- `aibot_send_msg`: a `chatid`, msgtype markdown with content <= 4096 UTF-8 bytes (40058
  beyond) or msgtype file with a `media_id` this server made (40007 otherwise), at most
  `limit` pushes per chat within `window_s` (45009 beyond: counted per chat, refused ones
  included); a file shows in the chat as `[文件] <filename>`;
- uploads (`aibot_upload_media_init` -> `upload_id`, `_chunk` with base64 of at most 512 KiB,
  `_finish` -> `media_id`): type file, 5 B < size <= 20 MB (40006), total_chunks that fit the
  size, every chunk there, the md5 right (40009 otherwise).

    server.post("@vidscribe https://...", chatid="group1")   # a member @-mentions the robot: req_id
    server.wait_answer(req_id); server.messages("group1")     # the answer; what the chat got
    server.drop(); server.close_clean(); server.take_over()   # abrupt cut, clean close, another instance
    server.cut_at_push = (3, "abort")                         # the 3rd push cuts the connection instead
    server.ack_pings = False                                  # heartbeats go unanswered
    server.hold_pushes_after = 2                              # later pushes hang, unanswered
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import ssl
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets import ConnectionClosed
from websockets.asyncio.server import Server, ServerConnection, serve

from tests.support.aioserver import LoopThread

MAX_MARKDOWN_BYTES = 4096  # restated on purpose, not imported from the code under test
ERR_SECRET, ERR_NOT_SUBSCRIBED, ERR_BAD_FRAME, ERR_UNKNOWN_CMD, ERR_BAD_REQ_ID = 40001, 40002, 40003, 40004, 40005
ERR_TOO_LONG, ERR_RATE_LIMITED = 40058, 45009
ERR_FILE_SIZE, ERR_MEDIA_ID, ERR_UPLOAD = 40006, 40007, 40009
CHUNK_BYTES, MAX_CHUNKS = 512 * 1024, 100  # of an upload, before base64
FILE_MIN_BYTES, FILE_MAX_BYTES = 5, 20 * 1024**2
FILE_PREFIX = "[文件] "  # a file message as the chat shows it (as wecom_receiver's)
# WeCom's side: its frame logs (secrets included) are not what the tests of vidscribe's logs look at.
_server_log = logging.getLogger("tests.wecom_bot_server")
_server_log.setLevel(logging.WARNING)


@dataclass
class _Peer:
    ws: ServerConnection
    bot: str | None = None


class WeComBotServer(LoopThread):
    """The stand-in; `bots` maps bot_id -> secret."""

    thread_name = "wecom-bot-server"

    def __init__(self, bots: dict[str, str] | None = None) -> None:
        super().__init__()
        self.bots = bots or {"bot1": "bot1-secret"}
        self.ca = trustme.CA()
        self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._ssl)
        self.ack_pings = True
        self.cut_at_push: tuple[int, str] | None = None  # (n, "abort"|"close"): the n-th push cuts the connection
        self.hold_pushes_after: int | None = None  # pushes beyond this many get no answer and are not kept
        self.limit, self.window_s = 30, 60.0
        self.subscribes: list[tuple[str, bool]] = []  # (bot_id, accepted), in arrival order
        self.pings = 0
        self.refused: list[int] = []  # errcodes of refused pushes, in order
        self.answers: dict[str, list[dict[str, Any]]] = defaultdict(list)  # callback req_id -> respond bodies
        self._chats: dict[str, list[str]] = defaultdict(list)
        self._pushes: dict[str, deque[float]] = defaultdict(deque)
        self._active: dict[str, _Peer] = {}
        self._uploads: dict[str, dict[str, Any]] = {}
        self._callbacks: dict[str, set[str]] = defaultdict(set)  # bot -> req_ids of callbacks it was sent
        self.files: dict[str, tuple[str, bytes]] = {}  # media_id -> (filename, data)
        self._server: Server | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"wss://127.0.0.1:{self.port}"

    def write_ca(self, path: Path) -> Path:
        """The CA's certificate as PEM at `path` (for wecom_bot.ca_file)."""
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def settings(self, ca_file: Path, bot: str = "bot1", secret: str | None = None, **fields: Any) -> dict[str, Any]:
        """wecom_bot settings for this server (fast timings for tests)."""
        return {
            "bot_id": bot,
            "secret": self.bots[bot] if secret is None else secret,
            "ws_url": self.url,
            "ca_file": str(ca_file),
            "heartbeat_s": 0.5,
            "ack_timeout_s": 2,
            "reconnect_max_s": 2,
            "progress_s": 0,  # one finished answer, unless a test asks for live progress
            **fields,
        }

    # -- what a test does (from its own thread) -------------------------------------------

    def post(
        self, text: str, *, chatid: str = "group1", userid: str = "alice", msgid: str | None = None, bot: str = "bot1"
    ) -> str:
        """A member's message to the robot (group chat; chatid == userid: one-to-one); its req_id."""
        req_id = f"aibot_msg_callback_{uuid.uuid4().hex[:12]}"
        single = chatid == userid
        body: dict[str, Any] = {
            "msgid": msgid or uuid.uuid4().hex,
            "aibotid": bot,
            "chattype": "single" if single else "group",
            "from": {"userid": userid},
            "msgtype": "text",
            "text": {"content": text},
        }
        if not single:
            body["chatid"] = chatid
        self._call(self._deliver(bot, {"cmd": "aibot_msg_callback", "headers": {"req_id": req_id}, "body": body}))
        return req_id

    def enter(self, userid: str = "alice", bot: str = "bot1") -> str:
        """A member opens a one-to-one chat with the robot (enter_chat event); its req_id."""
        req_id = f"aibot_event_callback_{uuid.uuid4().hex[:12]}"
        body = {
            "msgid": uuid.uuid4().hex,
            "aibotid": bot,
            "chattype": "single",
            "from": {"userid": userid},
            "msgtype": "event",
            "event": {"eventtype": "enter_chat"},
        }
        self._call(self._deliver(bot, {"cmd": "aibot_event_callback", "headers": {"req_id": req_id}, "body": body}))
        return req_id

    def finished(self, req_id: str) -> bool:
        """Whether the answer to a message is final (a finished stream, or not a stream)."""
        bodies = self.answers.get(req_id)
        return bool(bodies) and (bodies[-1]["msgtype"] != "stream" or bool(bodies[-1]["stream"].get("finish")))

    def wait_answer(self, req_id: str, timeout: float = 10) -> str:
        """The content of the answer to a posted message (as it stands: a stream may be updated)."""
        wait_until(lambda: bool(self.answers.get(req_id)), timeout, f"no answer to {req_id}")
        body = self.answers[req_id][-1]
        return str(body.get(body["msgtype"], {}).get("content", ""))

    def messages(self, chatid: str) -> list[str]:
        """What was pushed to a chat (aibot_send_msg), in order."""
        with self._lock:
            return list(self._chats[chatid])

    def online(self, bot: str = "bot1") -> bool:
        return bot in self._active

    def accepted_subscribes(self, bot: str = "bot1") -> int:
        return sum(1 for b, ok in self.subscribes if b == bot and ok)

    def drop(self, bot: str = "bot1") -> None:
        """Cut the bot's connection abruptly (no close frame)."""
        peer = self._active.pop(bot)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(peer.ws.transport.abort)

    def close_clean(self, bot: str = "bot1") -> None:
        """Close the bot's connection with a close frame (1000)."""
        peer = self._active.pop(bot)
        self._call(peer.ws.close(1000, "bye"))

    def take_over(self, bot: str = "bot1") -> None:
        """What WeCom does when another instance subscribes the robot: disconnected_event, then close."""
        peer = self._active.pop(bot)
        self._call(self._kick(peer))

    # -- the server ------------------------------------------------------------------------

    def _call(self, coroutine: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._server = await serve(self._serve, self.host, self.port, ssl=self._ssl, logger=_server_log)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _deliver(self, bot: str, frame: dict[str, Any]) -> None:
        peer = self._active.get(bot)
        if peer is None:
            raise RuntimeError(f"bot {bot} has no connection")
        self._callbacks[bot].add(frame["headers"]["req_id"])
        await peer.ws.send(json.dumps(frame, ensure_ascii=False))

    async def _kick(self, peer: _Peer) -> None:
        event = {"eventtype": "disconnected_event"}
        frame = {
            "cmd": "aibot_event_callback",
            "headers": {"req_id": f"aibot_event_callback_{uuid.uuid4().hex[:12]}"},
            "body": {"msgid": uuid.uuid4().hex, "aibotid": peer.bot, "msgtype": "event", "event": event},
        }
        try:
            await peer.ws.send(json.dumps(frame))
        finally:
            await peer.ws.close(1000, "replaced by a new connection")

    async def _serve(self, ws: ServerConnection) -> None:
        peer = _Peer(ws)
        try:
            await self._converse(peer)
        except ConnectionClosed:
            pass  # cut by either side: what a test does on purpose
        finally:
            if peer.bot is not None and self._active.get(peer.bot) is peer:
                del self._active[peer.bot]

    async def _converse(self, peer: _Peer) -> None:
        ws = peer.ws
        async for raw in ws:
            try:
                frame = json.loads(raw)
                req_id = str(frame["headers"]["req_id"])
            except (ValueError, KeyError, TypeError):
                await ws.send(json.dumps({"headers": {"req_id": ""}, "errcode": ERR_BAD_FRAME, "errmsg": "bad"}))
                continue
            errcode, errmsg = await self._handle(peer, str(frame.get("cmd") or ""), req_id, frame.get("body") or {})
            if errcode is not None:
                answer = {"headers": {"req_id": req_id}, "errcode": errcode, "errmsg": errmsg}
                await ws.send(json.dumps(answer))

    async def _handle(self, peer: _Peer, cmd: str, req_id: str, body: dict[str, Any]) -> tuple[int | None, str]:
        """(errcode, errmsg) of the answer; errcode None: no answer."""
        if cmd == "aibot_subscribe":
            bot = str(body.get("bot_id") or "")
            accepted = bool(bot) and self.bots.get(bot) == body.get("secret")
            self.subscribes.append((bot, accepted))
            if not accepted:
                return ERR_SECRET, "invalid secret"
            old = self._active.get(bot)
            peer.bot = bot
            self._active[bot] = peer
            if old is not None and old is not peer:
                asyncio.get_running_loop().create_task(self._kick(old))
            return 0, "ok"
        if peer.bot is None:
            return ERR_NOT_SUBSCRIBED, "not subscribed"
        if cmd == "ping":
            self.pings += 1
            return (0, "ok") if self.ack_pings else (None, "")
        if cmd.startswith("aibot_upload_media_"):
            answer = self._upload(cmd.removeprefix("aibot_upload_media_"), body)
            if isinstance(answer, tuple):
                return answer
            await peer.ws.send(
                json.dumps({"headers": {"req_id": req_id}, "errcode": 0, "errmsg": "ok", "body": answer})
            )
            return None, ""
        if cmd == "aibot_respond_msg":
            return self._respond(peer, req_id, body)
        if cmd == "aibot_respond_welcome_msg":
            if body.get("msgtype") != "text":  # a welcome is text only
                return ERR_BAD_FRAME, "a welcome is a text message"
            return self._respond(peer, req_id, body)
        if cmd == "aibot_send_msg":
            if self.cut_at_push is not None and sum(map(len, self._chats.values())) + 1 >= self.cut_at_push[0]:
                how = self.cut_at_push[1]
                self.cut_at_push = None
                self._active.pop(peer.bot, None)
                if how == "abort":
                    peer.ws.transport.abort()
                else:
                    await peer.ws.close(1000, "bye")
                return None, ""  # that push was not accepted
            if self.hold_pushes_after is not None and sum(map(len, self._chats.values())) >= self.hold_pushes_after:
                return None, ""
            return self._push(body)
        return ERR_UNKNOWN_CMD, f"unknown cmd {cmd}"

    def _respond(self, peer: _Peer, req_id: str, body: dict[str, Any]) -> tuple[int, str]:
        if req_id not in self._callbacks.get(peer.bot or "", set()):
            return ERR_BAD_REQ_ID, "req_id is not a callback of this robot"
        msgtype = body.get("msgtype")
        content = body.get(msgtype, {}).get("content") if msgtype in ("stream", "markdown", "text") else None
        if not isinstance(content, str):
            return ERR_BAD_FRAME, "a stream or markdown answer required"
        if len(content.encode()) > MAX_MARKDOWN_BYTES:
            return ERR_TOO_LONG, "content too long"
        earlier = self.answers.get(req_id)
        if earlier and msgtype == "stream":  # an update of the answer's stream: same id, not yet finished
            last = earlier[-1].get("stream", {})
            if last.get("finish") or last.get("id") != body["stream"].get("id"):
                return ERR_BAD_REQ_ID, "the stream is finished, or another stream"
        self.answers[req_id].append(body)
        return 0, "ok"

    def _upload(self, step: str, body: dict[str, Any]) -> dict[str, Any] | tuple[int, str]:
        """The answer's body, or (errcode, errmsg)."""
        if step == "init":
            size, chunks = body.get("total_size"), body.get("total_chunks")
            if body.get("type") != "file" or not body.get("filename") or not isinstance(size, int):
                return ERR_UPLOAD, "type file, a filename and total_size required"
            if not FILE_MIN_BYTES < size <= FILE_MAX_BYTES:
                return ERR_FILE_SIZE, "invalid file size"
            if chunks != -(-size // CHUNK_BYTES) or chunks > MAX_CHUNKS:
                return ERR_UPLOAD, "total_chunks does not fit total_size"
            upload_id = uuid.uuid4().hex
            self._uploads[upload_id] = {**body, "parts": {}}
            return {"upload_id": upload_id}
        upload = self._uploads.get(str(body.get("upload_id")))
        if upload is None:
            return ERR_UPLOAD, "unknown upload_id"
        if step == "chunk":
            index = body.get("chunk_index")
            try:
                data = base64.b64decode(str(body.get("base64_data")), validate=True)
            except ValueError:
                return ERR_UPLOAD, "base64_data is not base64"
            if not isinstance(index, int) or not 0 <= index < upload["total_chunks"] or len(data) > CHUNK_BYTES:
                return ERR_UPLOAD, "bad chunk"
            upload["parts"][index] = data
            return {}
        if step == "finish":
            data = b"".join(upload["parts"].get(i, b"") for i in range(upload["total_chunks"]))
            if len(upload["parts"]) != upload["total_chunks"] or len(data) != upload["total_size"]:
                return ERR_UPLOAD, "chunks missing"
            if hashlib.md5(data, usedforsecurity=False).hexdigest() != upload["md5"]:
                return ERR_UPLOAD, "md5 mismatch"
            media_id = uuid.uuid4().hex
            self.files[media_id] = (str(upload["filename"]), data)
            return {"type": "file", "media_id": media_id}
        return ERR_UNKNOWN_CMD, f"unknown upload step {step}"

    def _push(self, body: dict[str, Any]) -> tuple[int, str]:
        chatid = body.get("chatid")
        markdown, file = body.get("markdown"), body.get("file")
        if isinstance(file, dict) and body.get("msgtype") == "file" and chatid:
            stored = self.files.get(str(file.get("media_id")))
            if stored is None:
                return ERR_MEDIA_ID, "invalid media_id"
            markdown = {"content": FILE_PREFIX + stored[0]}
        elif not chatid or body.get("msgtype") != "markdown" or not isinstance(markdown, dict):
            return ERR_BAD_FRAME, "chatid and a markdown message required"
        now = time.monotonic()
        pushes = self._pushes[chatid]
        while pushes and now - pushes[0] >= self.window_s:
            pushes.popleft()
        pushes.append(now)
        if len(pushes) > self.limit:
            self.refused.append(ERR_RATE_LIMITED)
            return ERR_RATE_LIMITED, "api freq out of limit"
        content = str(markdown.get("content") or "")
        if len(content.encode()) > MAX_MARKDOWN_BYTES:
            self.refused.append(ERR_TOO_LONG)
            return ERR_TOO_LONG, "content too long"
        with self._lock:
            self._chats[chatid].append(content)
        return 0, "ok"


def wait_until(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.02)


@pytest.fixture
def wecom_bot_server() -> Iterator[WeComBotServer]:
    with WeComBotServer() as server:
        yield server
