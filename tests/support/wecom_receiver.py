"""Pytest plugin: a local WeCom group-robot receiver that enforces WeCom's documented limits.

`WeComReceiver` serves `POST /cgi-bin/webhook/send?key=K` and
`POST /cgi-bin/webhook/upload_media?key=K&type=file` with aiohttp on 127.0.0.1 in a
background thread, so a client in this process, a subprocess or a Ray worker talks real
HTTP to it. Like WeCom it answers HTTP 200 with `{"errcode", "errmsg"}`:

- unknown or empty key -> 93000 (keys become known through `webhook_url(key)`);
- body not JSON -> 40008; unknown msgtype -> 40008; empty content -> 44004;
- markdown/markdown_v2 content > 4096 UTF-8 bytes or text > 2048 -> 40058;
- upload: `type` not `file` -> 40005; no multipart `media` file -> 44001; size not in
  5 B < n <= 20 MB -> 40006; a `file` message whose media_id this key did not upload, or
  uploaded more than `media_ttl_s` ago (3 days) -> 40007;
- more than `limit` requests for one key within `window_s` seconds -> 45009. Every
  request with a known key counts, uploads and refused ones included (the strict reading).

    wecom.script("45009", "-1", "500", "slow:3", "reset")  # next requests, in arrival order
    wecom.delay_for("group", 3.0)                          # every answer to one key is slow
    wecom.refuse("group", -1); wecom.refuse("group", None)  # every request of a key refused, until lifted
    wecom.limit, wecom.window_s = 20, 1.0                  # shorter window for fast tests
    wecom.media_ttl_s = 0                                  # every media_id has expired
    wecom.messages("group"), wecom.requests                # what was accepted / everything
    message.filename, message.text                         # of an accepted `file` message

`parse_blocks` and `assert_contiguous_blocks` check what a group saw: each video's
content block in one piece, in order, with no status notice inside it (a file message,
shown as `[文件] name`, ends the block it follows).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from actors.delivery.render import BlockKind, clean_title
from actors.delivery.settings import WeComSettings
from tests.support.aioserver import BackgroundServer

SEND_PATH = "/cgi-bin/webhook/send"
UPLOAD_PATH = "/cgi-bin/webhook/upload_media"
MAX_BYTES = {"markdown": 4096, "markdown_v2": 4096, "text": 2048}  # WeCom's, restated on purpose
MEDIA_MIN_BYTES, MEDIA_MAX_BYTES = 5, 20 * 1024**2  # an upload must be > 5 B and <= 20 MB
MEDIA_TTL_S = 3 * 24 * 3600.0  # a media_id is valid for 3 days
FILE_PREFIX = "[文件] "  # how a file message shows in the chat list; the content of its Message
DEFAULT_LIMIT = 20
DEFAULT_WINDOW_S = 60.0
ERRMSG = {
    0: "ok",
    -1: "system busy",
    40005: "invalid type",
    40006: "invalid file size",
    40007: "invalid media_id",
    40008: "invalid message type",
    40058: "content exceed max length",
    44001: "empty media data",
    44004: "empty content",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    93000: "invalid webhook url",
}
_MENTION = re.compile(r"<@[^>\s]+>")
_LINK = re.compile(r"!?\[[^\]\n]*\]\([^)\n]*\)")
_HTML = re.compile(r"</?[A-Za-z][^>\n]*>")
_BLOCK = re.compile(r"^[ \t]*(?:#{1,6}[ \t]|>)", re.MULTILINE)
_LIVE_MARKUP = {
    "text": {"mention": _MENTION},
    "markdown": {"mention": _MENTION, "link": _LINK, "html": _HTML, "block": _BLOCK},
    "markdown_v2": {"mention": _MENTION, "link": _LINK, "html": _HTML, "block": _BLOCK},
}
_STEP = re.compile(r"(-1|\d{5})|([1-5]\d\d)|slow:(\d+(?:\.\d+)?)|(reset)")


@dataclass(frozen=True)
class Message:
    """One message WeCom accepted (time.monotonic(), comparable across processes).

    A `file` message's content is `[文件] <filename>`; `filename` and `data` are the upload's.
    """

    key: str
    msgtype: str
    content: str
    arrived_at: float  # when the request arrived (and the group saw it)
    filename: str | None = None
    data: bytes = field(default=b"", repr=False)

    @property
    def text(self) -> str:
        """The file's content as UTF-8 text."""
        return self.data.decode("utf-8")

    def live_markup(self) -> list[tuple[str, str]]:
        """(kind, text) of every construct WeCom renders in this message as more than words:
        mentions (all types: `<@userid>` works in text too), links, images, colours, HTML,
        headings and quotes (markdown types)."""
        kinds = _LIVE_MARKUP.get(self.msgtype, {})
        return [(kind, m.group(0)) for kind, pattern in kinds.items() for m in pattern.finditer(self.content)]


@dataclass
class Request:
    """Any request to the send or upload path and how it was answered."""

    key: str
    arrived_at: float
    step: str | None  # the scripted injection it consumed, if any
    errcode: int | None = None  # the JSON errcode answered
    http_status: int | None = None
    outcome: str = "pending"  # "errcode", "http", "reset" or "pending" until answered
    answered_at: float | None = None
    body: bytes = field(default=b"", repr=False)  # of a send request
    path: str = SEND_PATH


Verdict = int | dict[str, Any]  # an errcode, or the fields of an errcode-0 answer


class WeComReceiver(BackgroundServer):
    """A WeCom robot webhook on a background thread; see the module docstring."""

    thread_name = "wecom-receiver"
    # No handler cancellation: like WeCom, a message whose sender hung up (timed out) is
    # still delivered, so a retry after a timeout can arrive twice. No access log: it
    # would print robot keys into the logs of tests that check for them.
    runner_options = {"handler_cancellation": False, "access_log": None}  # noqa: RUF012

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, limit: int = DEFAULT_LIMIT, window_s: float = DEFAULT_WINDOW_S
    ) -> None:
        super().__init__(host, port)
        self.limit = limit
        self.window_s = window_s
        self.media_ttl_s = MEDIA_TTL_S
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._script: deque[str] = deque()
        self._delays: dict[str, float] = {}
        self._refusals: dict[str, int] = {}
        self._windows: dict[str, deque[float]] = {}
        self._messages: list[Message] = []
        self._requests: list[Request] = []
        self._media: dict[str, tuple[str, float, str, bytes]] = {}  # media_id -> (key, uploaded_at, name, data)

    # -- controls ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}{SEND_PATH}"

    def webhook_url(self, key: str, *, known: bool = True) -> str:
        """The webhook URL for `key`; a non-empty key becomes known unless `known=False`."""
        if key and known:
            with self._lock:
                self._keys.add(key)
        return f"{self.base_url}?key={key}"

    def settings(self, key: str = "group", **overrides: Any) -> WeComSettings:
        """WeComSettings for `key` matching this receiver's limit and window, fast retries."""
        values: dict[str, Any] = {
            "webhook_url": self.webhook_url(key),
            "rate_per_window": self.limit,
            "window_s": self.window_s,
            "timeout_s": 5.0,
            "retry_base_s": 0.02,
        }
        values.update(overrides)
        return WeComSettings(**values)

    def script(self, *steps: str) -> None:
        """Queue injections for the next requests (any key), consumed in arrival order.

        "45009", "-1" or any 5-digit errcode: answer it; "500" (any 3-digit): that HTTP
        status; "slow:3": handle normally but answer 3 s late; "reset": close the connection.
        """
        for step in steps:
            if not _STEP.fullmatch(step):
                raise ValueError(f"unknown WeCom receiver step {step!r}")
        with self._lock:
            self._script.extend(steps)

    def delay_for(self, key: str, seconds: float) -> None:
        """Answer every request to `key` `seconds` late (0 removes it); a serial sender slows down."""
        with self._lock:
            self._delays[key] = seconds

    def refuse(self, key: str, errcode: int | None) -> None:
        """Answer every request to `key` with `errcode` (a robot that keeps failing); None lifts it."""
        with self._lock:
            if errcode is None:
                self._refusals.pop(key, None)
            else:
                self._refusals[key] = errcode

    def reset(self) -> None:
        """Forget keys, scripts, delays, windows, uploads and records; default limit, window, media TTL."""
        with self._lock:
            self._keys.clear()
            self._script.clear()
            self._delays.clear()
            self._refusals.clear()
            self._windows.clear()
            self._messages = []
            self._requests = []
            self._media = {}
        self.limit, self.window_s, self.media_ttl_s = DEFAULT_LIMIT, DEFAULT_WINDOW_S, MEDIA_TTL_S

    def messages(self, key: str | None = None) -> list[Message]:
        """Accepted messages in arrival order (what the group saw), of one key or all."""
        with self._lock:
            return [m for m in self._messages if key is None or m.key == key]

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def pending_script(self) -> list[str]:
        with self._lock:
            return list(self._script)

    # -- serving ---------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post(SEND_PATH, self._send)
        app.router.add_post(UPLOAD_PATH, self._upload)

    # -- the webhook ------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, self._accept_message)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, self._accept_upload)

    async def _handle(
        self, request: web.Request, accept: Callable[[Request, web.Request], Awaitable[Verdict]]
    ) -> web.StreamResponse:
        arrived = time.monotonic()
        key = request.query.get("key", "")
        with self._lock:
            step = self._script.popleft() if self._script else None
            record = Request(key=key, arrived_at=arrived, step=step, path=request.path)
            self._requests.append(record)
            known = key in self._keys
            # Every request with a known key counts against its window, refused or not.
            rate_limited = known and self._count(key, arrived)
            delay = self._delays.get(key, 0.0)
            refusal = self._refusals.get(key) if known else None
        scripted = _STEP.fullmatch(step) if step else None
        if scripted and scripted.group(2):
            record.outcome, record.http_status = "http", int(scripted.group(2))
            return web.Response(status=record.http_status, text="<html>scripted error</html>")
        if scripted and scripted.group(4):
            record.outcome = "reset"
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=499)  # never reaches the client
        if scripted and scripted.group(1):
            verdict: Verdict = int(scripted.group(1))
        elif refusal is not None:
            verdict = refusal
        else:
            verdict = 93000 if not known else 45009 if rate_limited else await accept(record, request)
        # The group sees a message when it arrives; slowness is in the answer. So a sender
        # that dies (or times out) mid-request has still delivered, in arrival order.
        slow = float(scripted.group(3)) if scripted and scripted.group(3) else 0.0
        await self.pause(slow + delay)
        return self._answer(record, verdict)

    async def _accept_message(self, record: Request, request: web.Request) -> Verdict:
        """Check a send request; an accepted message is recorded here, at arrival."""
        record.body = await request.read()
        parsed = _parse(record.body)
        if isinstance(parsed, int):
            return parsed
        msgtype, content = parsed
        filename: str | None = None
        data = b""
        with self._lock:
            if msgtype == "file":  # `content` is the media_id
                owner, uploaded_at, filename, data = self._media.get(content, ("", 0.0, "", b""))
                if owner != record.key or record.arrived_at - uploaded_at > self.media_ttl_s:
                    return 40007
                content = FILE_PREFIX + filename
            self._messages.append(Message(record.key, msgtype, content, record.arrived_at, filename, data))
        return 0

    async def _accept_upload(self, record: Request, request: web.Request) -> Verdict:
        """Check an upload_media request and keep the file under a new media_id."""
        if request.query.get("type") != "file":
            return 40005
        form = await request.post() if request.content_type == "multipart/form-data" else {}
        media = form.get("media")
        if not isinstance(media, web.FileField):
            return 44001
        data = media.file.read()
        if not MEDIA_MIN_BYTES < len(data) <= MEDIA_MAX_BYTES:
            return 40006
        media_id = uuid.uuid4().hex
        with self._lock:
            self._media[media_id] = (record.key, record.arrived_at, media.filename, data)
        return {"type": "file", "media_id": media_id, "created_at": str(int(time.time()))}

    def _count(self, key: str, now: float) -> bool:
        """Record one request for `key`; True when it is over the limit (caller holds the lock)."""
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - self.window_s:
            window.popleft()
        over = len(window) >= self.limit
        window.append(now)
        return over

    def _answer(self, record: Request, verdict: Verdict) -> web.Response:
        errcode, fields = (verdict, {}) if isinstance(verdict, int) else (0, verdict)
        record.outcome, record.errcode, record.http_status = "errcode", errcode, 200
        record.answered_at = time.monotonic()
        return web.json_response({"errcode": errcode, "errmsg": ERRMSG.get(errcode, "scripted error"), **fields})


def _parse(body: bytes) -> tuple[str, str] | int:
    """(msgtype, content or media_id) of a send request, or the errcode WeCom gives a bad one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 40008
    msgtype = data.get("msgtype") if isinstance(data, dict) else None
    if msgtype not in MAX_BYTES and msgtype != "file":
        return 40008
    inner = data.get(msgtype)
    if msgtype == "file":
        media_id = inner.get("media_id") if isinstance(inner, dict) else None
        return (msgtype, media_id) if isinstance(media_id, str) else 40007
    content = inner.get("content") if isinstance(inner, dict) else None
    if not isinstance(content, str) or not content:
        return 44004
    if len(content.encode("utf-8")) > MAX_BYTES[msgtype]:
        return 40058
    return msgtype, content


@pytest.fixture(scope="session")
def wecom_server() -> Iterator[WeComReceiver]:
    """One receiver for the whole session (prefer `wecom`, which resets it)."""
    with WeComReceiver() as server:
        yield server


@pytest.fixture
def wecom(wecom_server: WeComReceiver) -> WeComReceiver:
    """The session's WeCom receiver, reset for this test (limit 20 per 60 s)."""
    wecom_server.reset()
    return wecom_server


# ---- what the group saw --------------------------------------------------------------

_CONTENT_HEADER = re.compile(r"【(校对|总结|转录) (\d+)/(\d+)】(.*)")
STATUS_PREFIX = "【状态】"
_START_RULE = "must start at 校对 1/n or 转录 1/n (at 总结 1/m when a file carries its text)"


@dataclass
class Section:
    """Consecutive parts of one kind of one video's block."""

    kind: BlockKind
    total: int
    positions: list[int] = field(default_factory=list)  # message indexes, 0-based

    @property
    def complete(self) -> bool:
        return len(self.positions) == self.total


@dataclass
class Block:
    """One video's content block as it arrived: a run of sections."""

    title: str
    sections: list[Section] = field(default_factory=list)
    files: list[int] = field(default_factory=list)  # positions of its file message (one at most)

    @property
    def last(self) -> Section:
        return self.sections[-1]

    def counts(self) -> dict[str, int]:
        counts = {str(section.kind): section.total for section in self.sections}
        return counts | ({"文件": len(self.files)} if self.files else {})

    def describe(self) -> str:
        section = self.last
        return f"{section.kind} {len(section.positions)}/{section.total} of {self.title!r}"


class BlockOrderError(AssertionError):
    """What the group saw breaks the block rules; the message says where."""


def _content_of(message: Any) -> str:
    return message if isinstance(message, str) else str(message.content)


def parse_blocks(messages: Sequence[Any]) -> list[Block]:
    """Group messages (Message or str) into content blocks; raise BlockOrderError on any break.

    Rules: a block starts at 校对 1/n or 转录 1/n; its parts follow without gap or
    repeat up to n/n, optionally followed at once by 总结 1/m … m/m, optionally followed
    at once by one file message, which ends the block; a block whose text came as that file
    may start at 总结 1/m; nothing (no other video, no 【状态】 notice) comes between two
    parts of a block; a title has one block.
    """
    blocks: list[Block] = []
    open_block: Block | None = None  # the block the previous message belonged to
    finished: dict[str, int] = {}  # title -> position of its block's first message
    for position, message in enumerate(messages):
        content = _content_of(message)
        first_line = content.split("\n", 1)[0]
        where = f"message #{position} ({first_line[:60]!r})"
        if content.startswith(STATUS_PREFIX):
            if open_block is not None and not open_block.last.complete:
                raise BlockOrderError(f"{where}: status notice inside the block, after {open_block.describe()}")
            open_block = None  # nothing may continue a block across a notice
            continue
        if content.startswith(FILE_PREFIX):
            if open_block is None or not open_block.last.complete or open_block.files:
                problem = (
                    "outside any block"
                    if open_block is None
                    else f"inside the block, after {open_block.describe()}"
                    if not open_block.last.complete
                    else f"a second file in the block of {open_block.title!r}"
                )
                raise BlockOrderError(f"{where}: file {problem}")
            open_block.files.append(position)
            continue
        header = _CONTENT_HEADER.fullmatch(first_line)
        if header is None:
            raise BlockOrderError(f"{where}: neither a content header nor a status notice")
        kind, index, total, title = BlockKind(header[1]), int(header[2]), int(header[3]), header[4]
        if not 1 <= index <= total:
            raise BlockOrderError(f"{where}: part number {index} outside 1..{total}")
        if open_block is not None and not open_block.last.complete:
            section = open_block.last
            expected = f"{section.kind} {len(section.positions) + 1}/{section.total} of {open_block.title!r}"
            if (title, kind, total) != (open_block.title, section.kind, section.total):
                raise BlockOrderError(f"{where}: interrupts the block, expected {expected}")
            if index != len(section.positions) + 1:
                problem = "repeats a part" if index <= len(section.positions) else "skips parts"
                raise BlockOrderError(f"{where}: {problem} of {title!r}, expected {expected}")
            section.positions.append(position)
            continue
        if open_block and not open_block.files and (title, kind, index) == (open_block.title, BlockKind.SUMMARY, 1):
            if open_block.last.kind is BlockKind.SUMMARY:
                raise BlockOrderError(f"{where}: a second summary in the block of {title!r}")
            open_block.sections.append(Section(kind, total, [position]))
            continue
        if title in finished:
            raise BlockOrderError(
                f"{where}: {title!r} already had its block (starting at message #{finished[title]}); "
                "a block must arrive in one piece, once"
            )
        if index != 1:
            raise BlockOrderError(f"{where}: a block of {title!r} {_START_RULE}")
        open_block = Block(title, [Section(kind, total, [position])])
        blocks.append(open_block)
        finished[title] = position
    if open_block is not None and not open_block.last.complete:
        section = open_block.last
        missing = f"{len(section.positions) + 1}..{section.total}"
        raise BlockOrderError(f"block of {open_block.title!r} ends early: {section.kind} parts {missing} never arrived")
    for block in blocks:
        if block.sections[0].kind is BlockKind.SUMMARY and not block.files:
            raise BlockOrderError(f"block of {block.title!r} starts at 总结 1/m, no file followed: it {_START_RULE}")
    return blocks


def assert_contiguous_blocks(
    messages: Sequence[Any], expected_titles: Sequence[str] | None = None
) -> dict[str, dict[str, int]]:
    """Check block rules (see parse_blocks); return {title: {"校对": n, "总结": m}} per video.

    With `expected_titles`, exactly those videos (titles as headers show them) had a block.
    """
    blocks = parse_blocks(messages)
    counts = {block.title: block.counts() for block in blocks}
    if expected_titles is not None:
        expected = {clean_title(title) for title in expected_titles}
        missing = sorted(expected - counts.keys())
        unexpected = sorted(counts.keys() - expected)
        if missing or unexpected:
            raise BlockOrderError(f"blocks missing for {missing}, unexpected blocks for {unexpected}")
    return counts
