"""WeCom group-robot client: message rendering within WeCom's byte limits, a per-robot
rate limiter, and a sender that retries what heals by waiting and fails fast on the rest
(messages, and files: `upload_media`, then a `file` message).

Plain module (no Ray). WeCom answers HTTP 200 for almost everything; the JSON `errcode`
is the verdict. The webhook URL holds the robot's secret key: it is never logged, only
its redacted form (`key=abc…`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx

from actors.errors import DeliveryError, ForbiddenURL
from actors.guarded_net import guarded_async_client
from actors.textsplit import pack, utf8_len
from serve_app.settings import WeComSettings

log = logging.getLogger(__name__)

MAX_BYTES = {"markdown": 4096, "markdown_v2": 4096, "text": 2048}
TITLE_MAX_BYTES = 240  # keeps headers readable and leaves every part room for its body

ERR_OK = 0
ERR_BUSY = -1
ERR_RATE_LIMITED = 45009
ERR_TOO_LONG = 40058
ERR_BAD_WEBHOOK = 93000  # also used when the URL does not reach a webhook at all (HTTP 4xx, bad URL)
RETRYABLE_ERRCODES = frozenset({ERR_BUSY, ERR_RATE_LIMITED})


class BlockKind(StrEnum):
    """Which part of a video's content block a message belongs to."""

    PROOFREAD = "校对"
    SUMMARY = "总结"
    TRANSCRIPT = "转录"


# ---- rendering ---------------------------------------------------------------------

# Anything a renderer could take as a line break (or that is invisible noise in a title).
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def _truncate(text: str, max_bytes: int) -> str:
    """`text` cut by characters (with …) so that it fits `max_bytes` UTF-8 bytes."""
    if utf8_len(text) <= max_bytes:
        return text
    budget = max_bytes - utf8_len("…")
    kept, size = [], 0
    for char in text:
        size += utf8_len(char)
        if size > budget:
            break
        kept.append(char)
    return "".join(kept) + "…"


def clean_title(title: str) -> str:
    """The title as headers show it: one line, whitespace collapsed, at most TITLE_MAX_BYTES."""
    one_line = " ".join(_LINE_BREAKS.sub(" ", title).split())
    return _truncate(one_line or "(无标题)", TITLE_MAX_BYTES)


def _header(kind: BlockKind, index: int | str, total: int | str, title: str) -> str:
    return f"【{kind} {index}/{total}】{title}\n"


def render_parts(kind: BlockKind, title: str, text: str, msgtype: str) -> list[str]:
    """Messages `【{kind} i/n】{title}` + newline + slice of `text`, each within MAX_BYTES[msgtype].

    Slices cut at paragraph, then sentence, then character boundaries and concatenate
    back to `text` exactly. Markdown is not escaped; the title is forced onto one line
    so nothing can break the header. Empty `text` gives no parts.
    """
    limit = MAX_BYTES[msgtype]
    title = clean_title(title)
    digits = 1
    while True:
        # Reserve the widest header with `digits`-wide numbers; more parts than that
        # width allows means a longer header, a smaller body and another try.
        widest = "9" * digits
        body_limit = limit - utf8_len(_header(kind, widest, widest, title))
        bodies = pack(text, body_limit, utf8_len)
        if len(str(len(bodies))) <= digits:
            break
        digits += 1
    total = len(bodies)
    return [_header(kind, index, total, title) + body for index, body in enumerate(bodies, start=1)]


def render_status(text: str) -> str:
    """A status notice `【状态】{text}`, truncated to fit a text message."""
    prefix = "【状态】"
    return prefix + _truncate(text, MAX_BYTES["text"] - utf8_len(prefix))


def strip_header(part: str) -> str:
    """The body of a rendered part: everything after its header line."""
    _, _, body = part.partition("\n")
    return body


# ---- secrets in logs -----------------------------------------------------------------

_KEY_IN_URL = re.compile(r"(key=)([^&\s'\"]*)", re.IGNORECASE)


def redact_key(key: str) -> str:
    """`abc…` for a key (nothing of short ones), safe to log."""
    return f"{key[:3]}…" if len(key) >= 12 else "…"


def redact(text: str) -> str:
    """`text` with every `key=…` query value redacted."""
    return _KEY_IN_URL.sub(lambda m: m.group(1) + redact_key(m.group(2)), text)


def upload_url(webhook_url: str) -> str:
    """The robot's file upload URL: the webhook's `/send` path as `/upload_media`, same key, `type=file`."""
    parts = urlsplit(webhook_url)
    path = parts.path.removesuffix("/send") + "/upload_media"
    query = f"{parts.query}&type=file" if parts.query else "type=file"
    return urlunsplit(parts._replace(path=path, query=query))


def webhook_key(webhook_url: str) -> str:
    """The robot key of a webhook URL (the URL itself when it has none): the rate-limit key."""
    keys = parse_qs(urlsplit(webhook_url).query).get("key")
    return keys[0] if keys and keys[0] else webhook_url


class _RedactFilter(logging.Filter):
    """Redacts webhook keys in records of loggers we do not own (httpx logs full URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "key=" in message:
            record.msg, record.args = redact(message), None
        return True


def _install_redaction() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactFilter) for f in logger.filters):
            logger.addFilter(_RedactFilter())


_install_redaction()


# ---- rate limiting ------------------------------------------------------------------

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
_IN_FLIGHT = float("inf")  # a slot in use never expires before it is settled


class RateLimiter:
    """Per-key sliding window: at most `rate` slots in any `window_s` seconds.

    A slot taken with `slot()` counts from when the attempt *ended*, so the server's
    arrival time (always earlier) is inside the window we reserved; `acquire()` stamps
    the slot at once. The clock and sleep are injectable for unit tests.
    """

    def __init__(
        self, rate: int, window_s: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        if rate < 1 or window_s <= 0:
            raise ValueError("rate must be >= 1 and window_s > 0")
        self.rate = rate
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._stamps: dict[str, list[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: WeComSettings) -> RateLimiter:
        """A limiter with WeCom's rate and window from settings."""
        return cls(settings.rate_per_window, settings.window_s)

    async def acquire(self, key: str) -> None:
        """Wait until `key` has a free slot and take it (stamped now)."""
        index = await self._reserve(key)
        self._stamps[key][index] = self._clock()

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        """Hold a slot for one attempt; it counts from the moment the attempt ends."""
        await self._reserve(key)
        try:
            yield
        finally:
            stamps = self._stamps[key]
            stamps[stamps.index(_IN_FLIGHT)] = self._clock()

    async def _reserve(self, key: str) -> int:
        # One waiter per key at a time, so slots are handed out first come, first served.
        async with self._locks.setdefault(key, asyncio.Lock()):
            while True:
                now = self._clock()
                stamps = [s for s in self._stamps.get(key, []) if s > now - self.window_s]
                self._stamps[key] = stamps
                if len(stamps) < self.rate:
                    stamps.append(_IN_FLIGHT)
                    return len(stamps) - 1
                oldest = min(stamps)
                # All slots in flight: poll until one settles (rare: sends are serial per key).
                wait = oldest + self.window_s - now if oldest != _IN_FLIGHT else min(0.05, self.window_s / 10)
                await self._sleep(max(wait, 0.001))


# ---- sending ------------------------------------------------------------------------

# Network trouble that may heal: timeouts, refused/reset connections, a peer that hung up.
_TRANSIENT_NETWORK = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class _Retry(Exception):
    """One attempt failed in a way that waiting may fix."""

    def __init__(self, reason: str, errcode: int | None) -> None:
        super().__init__(reason, errcode)
        self.reason = reason
        self.errcode = errcode


class WeComClient:
    """Sends one message at a time to a group robot, within WeCom's rate, with retries."""

    def __init__(
        self,
        settings: WeComSettings,
        limiter: RateLimiter | None = None,
        *,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_event = on_event  # each attempt's result: "sent", "retried" or "failed" (metrics)
        self._limiter = limiter or RateLimiter.from_settings(settings)
        # Webhooks may come from requests: every connection is checked where it lands (SSRF).
        self._http = guarded_async_client(allow_private=settings.allow_private_webhooks, timeout=settings.timeout_s)

    async def send(self, webhook_url: str, content: str, msgtype: str | None = None) -> None:
        """Deliver `content` once WeCom says errcode 0; DeliveryError(message, errcode) otherwise."""
        msgtype = msgtype or self._settings.msgtype
        if msgtype not in MAX_BYTES:
            raise ValueError(f"unsupported WeCom msgtype {msgtype!r}")
        await self._post(webhook_url, json={"msgtype": msgtype, msgtype: {"content": content}})

    async def send_file(self, webhook_url: str, filename: str, data: bytes) -> None:
        """Upload `data` as file `filename` (upload_media), then send it as a `file` message.

        Each request is retried and rate limited like `send`; a media_id lives 3 days, so
        a caller that failed between the two simply uploads again.
        """
        media = (filename, data, "application/octet-stream")
        answer = await self._post(upload_url(webhook_url), files={"media": media})
        media_id = answer.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise DeliveryError("WeCom accepted the upload but answered no media_id")  # errcode None: retried later
        await self._post(webhook_url, json={"msgtype": "file", "file": {"media_id": media_id}})

    async def _post(self, url: str, **request: Any) -> dict[str, Any]:
        """POST to the robot until WeCom answers errcode 0 (returns that answer), retrying what may heal."""
        key = webhook_key(url)
        where = f"key={redact_key(key)}"
        attempts = max(1, self._settings.max_attempts)
        attempt = 0
        while True:
            attempt += 1
            try:
                # Every attempt takes a slot: WeCom may count refused requests too.
                async with self._limiter.slot(key):
                    answer = await self._attempt(url, request)
                self._notify("sent")
                return answer
            except DeliveryError:
                self._notify("failed")
                raise
            except _Retry as retry:
                self._notify("failed" if attempt == attempts else "retried")
                if attempt == attempts:
                    raise DeliveryError(
                        f"WeCom unavailable after {attempts} attempts: {retry.reason}", retry.errcode
                    ) from None
                delay = self._backoff(attempt, retry.errcode)
                log.warning(
                    "WeCom %s: %s; attempt %d/%d, retrying in %.2fs", where, retry.reason, attempt, attempts, delay
                )
                await asyncio.sleep(delay)

    def _notify(self, result: str) -> None:
        if self._on_event is not None:
            self._on_event(result)

    def _backoff(self, attempt: int, errcode: int | None) -> float:
        """Doubling delay capped at one window; 45009 waits a whole window for it to slide."""
        window = self._settings.window_s
        if errcode == ERR_RATE_LIMITED:
            return window
        return min(self._settings.retry_base_s * 2 ** (attempt - 1), window)

    async def _attempt(self, url: str, request: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(url, **request)
        except _TRANSIENT_NETWORK as error:
            raise _Retry(f"{type(error).__name__}: {redact(str(error)) or 'no detail'}", None) from None
        except ForbiddenURL as error:  # the webhook lands on a private address: never retried
            raise DeliveryError(f"webhook refused: {error.message}", ERR_BAD_WEBHOOK) from None
        except httpx.HTTPError as error:  # bad URL, unsupported scheme: no retry helps
            raise DeliveryError(f"webhook URL unusable: {type(error).__name__}", ERR_BAD_WEBHOOK) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retry(f"HTTP {response.status_code}", None)
        try:
            body = response.json()
            errcode = int(body["errcode"])
        except (ValueError, KeyError, TypeError):
            if response.status_code >= 400:
                raise DeliveryError(
                    f"HTTP {response.status_code} from the webhook URL: not a WeCom webhook", ERR_BAD_WEBHOOK
                ) from None
            raise _Retry(f"HTTP {response.status_code} without a WeCom answer", None) from None
        if errcode == ERR_OK:
            return body
        errmsg = redact(str(body.get("errmsg", "")))[:200]
        if errcode in RETRYABLE_ERRCODES:
            raise _Retry(f"errcode {errcode} ({errmsg})", errcode)
        raise DeliveryError(f"WeCom refused the message: errcode {errcode} ({errmsg})", errcode)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()
