"""Pytest plugin: a local WeCom group-robot receiver that enforces WeCom's documented limits.

`WeComReceiver` serves `POST /cgi-bin/webhook/send?key=K` with aiohttp on 127.0.0.1 in a
background thread, so a client in this process, a subprocess or a Ray worker talks real
HTTP to it. Like WeCom it answers HTTP 200 with `{"errcode", "errmsg"}`:

- unknown or empty key -> 93000 (keys become known through `webhook_url(key)`);
- body not JSON -> 40008; unknown msgtype -> 40008; empty content -> 44004;
- markdown/markdown_v2 content > 4096 UTF-8 bytes or text > 2048 -> 40058;
- more than `limit` requests for one key within `window_s` seconds -> 45009. Every
  request with a known key counts, refused ones included (the strict reading).

    wecom.script("45009", "-1", "500", "slow:3", "reset")  # next requests, in arrival order
    wecom.delay_for("group", 3.0)                          # every answer to one key is slow
    wecom.limit, wecom.window_s = 20, 1.0                  # shorter window for fast tests
    wecom.messages("group"), wecom.requests                # what was accepted / everything

`parse_blocks` and `assert_contiguous_blocks` check what a group saw: each video's
content block in one piece, in order, with no status notice inside it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from actors.wecom import BlockKind, clean_title
from serve_app.settings import WeComSettings
from tests.support.aioserver import BackgroundServer

SEND_PATH = "/cgi-bin/webhook/send"
MAX_BYTES = {"markdown": 4096, "markdown_v2": 4096, "text": 2048}  # WeCom's, restated on purpose
DEFAULT_LIMIT = 20
DEFAULT_WINDOW_S = 60.0
ERRMSG = {
    0: "ok",
    -1: "system busy",
    40008: "invalid message type",
    40058: "content exceed max length",
    44004: "empty content",
    45009: "api freq out of limit",
    93000: "invalid webhook url",
}
_STEP = re.compile(r"(-1|\d{5})|([1-5]\d\d)|slow:(\d+(?:\.\d+)?)|(reset)")


@dataclass(frozen=True)
class Message:
    """One message WeCom accepted (time.monotonic(), comparable across processes)."""

    key: str
    msgtype: str
    content: str
    arrived_at: float  # when the request arrived (and the group saw it)


@dataclass
class Request:
    """Any request to the send path and how it was answered."""

    key: str
    arrived_at: float
    step: str | None  # the scripted injection it consumed, if any
    errcode: int | None = None  # the JSON errcode answered
    http_status: int | None = None
    outcome: str = "pending"  # "errcode", "http", "reset" or "pending" until answered
    answered_at: float | None = None
    body: bytes = field(default=b"", repr=False)


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
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._script: deque[str] = deque()
        self._delays: dict[str, float] = {}
        self._windows: dict[str, deque[float]] = {}
        self._messages: list[Message] = []
        self._requests: list[Request] = []

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
            "allow_private_webhooks": True,  # the receiver listens on loopback
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

    def reset(self) -> None:
        """Forget keys, scripts, delays, windows and records; default limit and window."""
        with self._lock:
            self._keys.clear()
            self._script.clear()
            self._delays.clear()
            self._windows.clear()
            self._messages = []
            self._requests = []
        self.limit, self.window_s = DEFAULT_LIMIT, DEFAULT_WINDOW_S

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

    # -- the webhook ------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        key = request.query.get("key", "")
        body = await request.read()
        with self._lock:
            step = self._script.popleft() if self._script else None
            record = Request(key=key, arrived_at=arrived, step=step, body=body)
            self._requests.append(record)
            known = key in self._keys
            # Every request with a known key counts against its window, refused or not.
            rate_limited = known and self._count(key, arrived)
            delay = self._delays.get(key, 0.0)
        scripted = _STEP.fullmatch(step) if step else None
        if scripted and scripted.group(2):
            record.outcome, record.http_status = "http", int(scripted.group(2))
            return web.Response(status=record.http_status, text="<html>scripted error</html>")
        if scripted and scripted.group(4):
            record.outcome = "reset"
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=499)  # never reaches the client
        errcode = self._verdict(record, scripted, known, rate_limited, body)
        # The group sees a message when it arrives; slowness is in the answer. So a sender
        # that dies (or times out) mid-request has still delivered, in arrival order.
        slow = float(scripted.group(3)) if scripted and scripted.group(3) else 0.0
        await self.pause(slow + delay)
        return self._answer(record, errcode)

    def _verdict(
        self, record: Request, scripted: re.Match[str] | None, known: bool, rate_limited: bool, body: bytes
    ) -> int:
        """The errcode for this request; accepted messages are recorded here, at arrival."""
        if scripted and scripted.group(1):
            return int(scripted.group(1))
        if not known:
            return 93000
        if rate_limited:
            return 45009
        parsed = _parse(body)
        if isinstance(parsed, int):
            return parsed
        msgtype, content = parsed
        with self._lock:
            self._messages.append(Message(record.key, msgtype, content, record.arrived_at))
        return 0

    def _count(self, key: str, now: float) -> bool:
        """Record one request for `key`; True when it is over the limit (caller holds the lock)."""
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - self.window_s:
            window.popleft()
        over = len(window) >= self.limit
        window.append(now)
        return over

    def _answer(self, record: Request, errcode: int) -> web.Response:
        record.outcome, record.errcode, record.http_status = "errcode", errcode, 200
        record.answered_at = time.monotonic()
        return web.json_response({"errcode": errcode, "errmsg": ERRMSG.get(errcode, "scripted error")})


def _parse(body: bytes) -> tuple[str, str] | int:
    """(msgtype, content) of a send request, or the errcode WeCom gives a bad one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 40008
    msgtype = data.get("msgtype") if isinstance(data, dict) else None
    if msgtype not in MAX_BYTES:
        return 40008
    inner = data.get(msgtype)
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
_FIRST_KINDS = (BlockKind.PROOFREAD, BlockKind.TRANSCRIPT)


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

    @property
    def last(self) -> Section:
        return self.sections[-1]

    def counts(self) -> dict[str, int]:
        return {str(section.kind): section.total for section in self.sections}

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
    repeat up to n/n, optionally followed at once by 总结 1/m … m/m; nothing (no other
    video, no 【状态】 notice) comes between two parts of a block; a title has one block.
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
        if open_block is not None and title == open_block.title and kind is BlockKind.SUMMARY and index == 1:
            if open_block.last.kind is BlockKind.SUMMARY:
                raise BlockOrderError(f"{where}: a second summary in the block of {title!r}")
            open_block.sections.append(Section(kind, total, [position]))
            continue
        if title in finished:
            raise BlockOrderError(
                f"{where}: {title!r} already had its block (starting at message #{finished[title]}); "
                "a block must arrive in one piece, once"
            )
        if kind not in _FIRST_KINDS or index != 1:
            raise BlockOrderError(f"{where}: a block of {title!r} must start at 校对 1/n or 转录 1/n")
        open_block = Block(title, [Section(kind, total, [position])])
        blocks.append(open_block)
        finished[title] = position
    if open_block is not None and not open_block.last.complete:
        section = open_block.last
        missing = f"{len(section.positions) + 1}..{section.total}"
        raise BlockOrderError(f"block of {open_block.title!r} ends early: {section.kind} parts {missing} never arrived")
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
