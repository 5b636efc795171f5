"""WeCom group-robot client: sends one message (or file) at a time within the robot's rate,
retrying what heals by waiting and failing fast on the rest (files: `upload_media`, then
a `file` message).

Plain module (no Ray). WeCom answers HTTP 200 for almost everything; the JSON `errcode`
is the verdict. The webhook URL holds the robot's secret key: it is never logged, only
its redacted form (`key=abc…`, see `redact`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx

from actors.delivery.redact import redact, redact_key
from actors.delivery.render import MAX_BYTES
from actors.delivery.settings import WeComSettings
from actors.domain.errors import DeliveryError, ForbiddenURL
from actors.net.httpx_guard import guarded_async_client
from actors.util.ratelimit import RateLimiter
from actors.util.retry import retrying

log = logging.getLogger(__name__)


ERR_OK = 0
ERR_BUSY = -1
ERR_RATE_LIMITED = 45009
ERR_TOO_MANY_AT_ONCE = 45033  # concurrent requests over WeCom's limit
ERR_TOO_LONG = 40058
ERR_FILE_SIZE = 40006
ERR_BAD_WEBHOOK = 93000  # also used when the URL does not reach a webhook at all (HTTP 4xx, bad URL)
# WeCom busy, rate limited or crowded: waiting heals them.
RETRYABLE_ERRCODES = frozenset({ERR_BUSY, ERR_RATE_LIMITED, ERR_TOO_MANY_AT_ONCE})
FILE_MIN_BYTES, FILE_MAX_BYTES = 5, 20 * 1024**2  # upload_media takes more than 5 B, at most 20 MB


def is_permanent(error: DeliveryError) -> bool:
    """40058 (too long), 93000 (bad webhook) and other codes will not heal by waiting;
    a retryable errcode or none at all (network, HTTP 5xx) may."""
    return error.errcode is not None and error.errcode not in RETRYABLE_ERRCODES


def check_file_size(data: bytes) -> None:
    """DeliveryError for a file WeCom would refuse (webhook or smart robot), before it costs a request."""
    if not FILE_MIN_BYTES < len(data) <= FILE_MAX_BYTES:
        raise DeliveryError(f"a file of {len(data)} bytes: WeCom takes 6 B to 20 MB", ERR_FILE_SIZE)


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
        trusted_webhooks: Iterable[str] = (),
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        """`trusted_webhooks`: the operator's own (config): used as given, private hosts included."""
        self._settings = settings
        self._on_event = on_event  # each attempt's result: "sent", "retried" or "failed" (metrics)
        self._limiter = limiter or RateLimiter(settings.rate_per_window, settings.window_s)
        self._trusted = frozenset(trusted_webhooks)
        # The operator's proxy, if any, carries only the operator's own webhooks (trusted).
        proxy = settings.proxy.get_secret_value() if settings.proxy else None
        self._plain = httpx.AsyncClient(timeout=settings.timeout_s, trust_env=False, proxy=proxy)
        # Any other webhook came with a request: every connection is checked where it lands (SSRF).
        self._guarded = guarded_async_client(allow_private=settings.allow_private_webhooks, timeout=settings.timeout_s)

    async def send(self, webhook_url: str, content: str, msgtype: str | None = None) -> None:
        """Deliver `content` once WeCom says errcode 0; DeliveryError(message, errcode) otherwise."""
        msgtype = msgtype or self._settings.msgtype
        if msgtype not in MAX_BYTES:
            raise ValueError(f"unsupported WeCom msgtype {msgtype!r}")
        await self._post(webhook_url, webhook_url, json={"msgtype": msgtype, msgtype: {"content": content}})

    async def send_file(self, webhook_url: str, filename: str, data: bytes) -> None:
        """Upload `data` as file `filename` (upload_media), then send it as a `file` message.

        Each request is retried and rate limited like `send`; a media_id lives 3 days, so
        a caller that failed between the two simply uploads again.
        """
        check_file_size(data)
        media = (filename, data, "application/octet-stream")
        answer = await self._post(webhook_url, upload_url(webhook_url), files={"media": media})
        media_id = answer.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise DeliveryError("WeCom accepted the upload but answered no media_id")  # errcode None: retried later
        await self._post(webhook_url, webhook_url, json={"msgtype": "file", "file": {"media_id": media_id}})

    async def _post(self, webhook_url: str, url: str, **request: Any) -> dict[str, Any]:
        """POST to the robot at `url` (the webhook's own or its upload URL) until WeCom answers
        errcode 0 (returns that answer), retrying what may heal."""
        http = self._plain if webhook_url in self._trusted else self._guarded
        key = webhook_key(url)
        where = f"key={redact_key(key)}"
        attempts = max(1, self._settings.max_attempts)

        async def attempt() -> dict[str, Any]:
            # Every attempt takes a slot: WeCom may count refused requests too.
            async with self._limiter.slot(key):
                answer = await self._attempt(http, url, request)
            self._notify("sent")
            return answer

        def on_retry(number: int, retry: _Retry, delay: float) -> None:
            self._notify("retried")
            if retry.errcode == ERR_RATE_LIMITED:  # every lane sending with this key waits the window out
                self._limiter.hold(key, self._settings.window_s)
            log.warning("WeCom %s: %s; attempt %d/%d, retrying in %.2fs", where, retry.reason, number, attempts, delay)

        try:
            return await retrying(
                attempt,
                attempts=attempts,
                retry_on=_Retry,
                delay_for=lambda number, retry: self._backoff(number, retry.errcode),
                on_retry=on_retry,
            )
        except DeliveryError:
            self._notify("failed")
            raise
        except _Retry as retry:
            self._notify("failed")
            raise DeliveryError(f"WeCom unavailable after {attempts} attempts: {retry.reason}", retry.errcode) from None

    def _notify(self, result: str) -> None:
        if self._on_event is not None:
            self._on_event(result)

    def _backoff(self, attempt: int, errcode: int | None) -> float:
        """Doubling delay capped at one window; after 45009 the limiter holds the key for a window."""
        if errcode == ERR_RATE_LIMITED:
            return 0.0
        return min(self._settings.retry_base_s * 2 ** (attempt - 1), self._settings.window_s)

    async def _attempt(self, http: httpx.AsyncClient, url: str, request: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await http.post(url, **request)
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
        """Close the HTTP connection pools."""
        await self._plain.aclose()
        await self._guarded.aclose()
