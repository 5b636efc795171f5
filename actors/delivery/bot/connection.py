"""The smart robot's one long connection to WeCom: subscribe, heartbeat, reconnect, requests.

Speaks the protocol of `frames` with `websockets` (the official Python SDK 1.0.2 stops for
good after a clean close or its own missed-heartbeat close). The loop never gives up: any
loss (a drop, a clean close, two unanswered pings, a refused or unanswered subscribe) is
followed by a reconnect after a doubling wait, 1 s up to `reconnect_max_s`; a
`disconnected_event` (another instance subscribed the same robot) is logged as an error and
waited out for `replaced_backoff_s` (doubling with each replacement in a row, up to an hour)
instead of taking the robot back at once. The secret is
sent only in the subscribe frame and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from actors.delivery.bot import frames
from actors.delivery.bot.frames import ChatMessage, Frame
from actors.delivery.bot.settings import WeComBotSettings

log = logging.getLogger(__name__)
# websockets logs frame contents at DEBUG, and the subscribe frame holds the secret: never below INFO.
_wire_log = logging.getLogger(f"{__name__}.wire")
_wire_log.setLevel(logging.INFO)

MISSED_PINGS = 2  # unanswered pings after which the connection counts as lost (as the SDK)
MAX_REPLACED_BACKOFF_S = 3600.0


class BotState(StrEnum):
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"  # lost or refused; the next attempt is scheduled
    REPLACED = "replaced"  # another instance took the robot; backing off


class BotUnavailable(Exception):
    """The connection is not up (or went down before WeCom answered)."""


class BotRefused(Exception):
    """WeCom answered a frame with an errcode other than 0."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        return f"errcode {self.errcode} ({self.errmsg[:200]})"


class _Replaced(Exception):
    """WeCom said another connection subscribed this robot."""


MessageHandler = Callable[[ChatMessage], Coroutine[Any, Any, None]]
EnterHandler = Callable[[str], Coroutine[Any, Any, None]]  # the enter_chat event's req_id
StateObserver = Callable[[BotState, str], None]


def ssl_context(settings: WeComBotSettings) -> ssl.SSLContext | None:
    """The system's CAs plus `ca_file`; None for a ws:// URL."""
    if not settings.ws_url.startswith("wss://"):
        return None
    context = ssl.create_default_context()
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


async def handshake(settings: WeComBotSettings) -> None:
    """Open a connection to ws_url and close it, without subscribing: a subscribe would take the
    robot from a running service. OSError, TimeoutError or a WebSocketException when it fails."""
    async with connect(
        settings.ws_url, ssl=ssl_context(settings), open_timeout=settings.ack_timeout_s, logger=_wire_log
    ):
        pass


class BotConnection:
    """Holds the connection (`start()`), hands each message to `on_message`, answers `request`s."""

    def __init__(
        self,
        settings: WeComBotSettings,
        on_message: MessageHandler,
        *,
        on_state: StateObserver | None = None,
        on_enter: EnterHandler | None = None,
        base_delay_s: float = 1.0,
    ) -> None:
        self._settings = settings
        self._on_message = on_message
        self._on_enter = on_enter
        self._on_state = on_state
        self._base_delay_s = base_delay_s
        self.state = BotState.OFFLINE
        self.reason = "not started"
        self._ws: ClientConnection | None = None
        self._online = asyncio.Event()
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="wecom-bot-connection")

    async def close(self) -> None:
        tasks = [t for t in [self._runner, *self._handlers] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_online(self, within_s: float | None = None) -> None:
        """BotUnavailable when the connection is not up within `within_s` seconds (default: the
        longest wait between reconnects plus a subscribe's answer, so a reconnect under way is waited out)."""
        if within_s is None:
            within_s = self._settings.reconnect_max_s + self._settings.ack_timeout_s
        try:
            await asyncio.wait_for(self._online.wait(), within_s)
        except TimeoutError:
            raise self._unavailable() from None

    async def request(self, cmd: str, body: dict[str, Any], req_id: str | None = None) -> Frame:
        """Send one frame and wait for WeCom's answer: BotRefused on an errcode, BotUnavailable
        when the connection is down or drops (or WeCom does not answer in ack_timeout_s)."""
        ws = self._ws
        if ws is None or not self._online.is_set():
            raise self._unavailable()
        return await self._exchange(ws, cmd, body, req_id or frames.new_req_id(cmd))

    def _unavailable(self) -> BotUnavailable:
        return BotUnavailable(f"the robot's connection is {self.state} ({self.reason})")

    async def _exchange(self, ws: ClientConnection, cmd: str, body: dict[str, Any], req_id: str) -> Frame:
        answer: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = answer
        try:
            await ws.send(frames.encode(cmd, req_id, body))
            frame = await asyncio.wait_for(answer, self._settings.ack_timeout_s)
        except websockets.ConnectionClosed as error:
            raise BotUnavailable(f"connection closed: {error}") from None
        except TimeoutError:
            raise BotUnavailable(f"no answer to {cmd} within {self._settings.ack_timeout_s:g} s") from None
        finally:
            self._pending.pop(req_id, None)
        if frame.errcode:
            raise BotRefused(frame.errcode, frame.errmsg)
        return frame

    def _set_state(self, state: BotState, reason: str) -> None:
        self.state, self.reason = state, reason
        if self._on_state is not None:
            self._on_state(state, reason)

    async def _run(self) -> None:
        failures = replaced = 0
        while True:
            self._set_state(BotState.CONNECTING, f"connecting to {self._settings.ws_url}")
            try:
                await self._connect_once()
                reason = "WeCom closed the connection"
            except _Replaced:
                # Each replacement in a row doubles the wait: two instances settle instead of flapping.
                replaced += 1
                wait = min(self._settings.replaced_backoff_s * 2 ** (replaced - 1), MAX_REPLACED_BACKOFF_S)
                log.error(
                    "WeCom smart robot: another instance subscribed this robot (disconnected_event); backing off "
                    "%.0f s instead of taking it back. Run one vidscribe per robot.",
                    wait,
                )
                self._set_state(BotState.REPLACED, "another instance subscribed this robot")
                await asyncio.sleep(wait)
                failures = 0
                continue
            except BotRefused as error:
                reason = (
                    f"subscribe refused: {error}; check VIDSCRIBE_WECOM_BOT__BOT_ID and VIDSCRIBE_WECOM_BOT__SECRET"
                )
            except (OSError, TimeoutError, BotUnavailable, websockets.WebSocketException) as error:
                reason = f"{type(error).__name__}: {error}"
            except Exception as error:  # the loop must outlive anything: the robot is its only way in
                log.exception("WeCom smart robot: unexpected failure of the connection")
                reason = f"unexpected {type(error).__name__}"
            replaced = 0
            failures = 0 if self.state is BotState.ONLINE else failures + 1
            delay = min(self._base_delay_s * 2 ** max(failures - 1, 0), self._settings.reconnect_max_s)
            delay *= random.uniform(0.8, 1.0)  # replicas restarted together do not retry in step
            log.warning("WeCom smart robot offline: %s; reconnecting in %.1f s", reason, delay)
            self._set_state(BotState.OFFLINE, reason)
            await asyncio.sleep(delay)

    async def _connect_once(self) -> None:
        """One connection's life: returns when WeCom closes it, raises on any other end."""
        timeout = self._settings.ack_timeout_s
        async with connect(
            self._settings.ws_url,
            ssl=ssl_context(self._settings),  # a bad CA file is an OSError here, retried and logged
            open_timeout=timeout,
            ping_interval=None,
            max_size=2**22,
            logger=_wire_log,
        ) as ws:
            reader = asyncio.create_task(self._read(ws), name="wecom-bot-reader")
            try:
                assert self._settings.secret is not None
                subscribe = {"bot_id": self._settings.bot_id, "secret": self._settings.secret.get_secret_value()}
                await self._exchange(ws, frames.SUBSCRIBE, subscribe, frames.new_req_id(frames.SUBSCRIBE))
                self._ws = ws
                self._online.set()
                self._set_state(BotState.ONLINE, "subscribed")
                log.info("WeCom smart robot online (bot %s)", self._settings.bot_id)
                heartbeat = asyncio.create_task(self._heartbeat(ws), name="wecom-bot-heartbeat")
                try:
                    await asyncio.wait({reader, heartbeat}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    heartbeat.cancel()
                if heartbeat.done() and not heartbeat.cancelled() and heartbeat.exception() is not None:
                    raise heartbeat.exception()  # type: ignore[misc]
                reader.result()  # _Replaced, or a clean end
            finally:
                self._online.clear()
                self._ws = None
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
                for answer in self._pending.values():
                    if not answer.done():
                        answer.set_exception(BotUnavailable("the connection was lost before WeCom answered"))

    async def _heartbeat(self, ws: ClientConnection) -> None:
        missed = 0
        while True:
            await asyncio.sleep(self._settings.heartbeat_s)
            try:
                await self._exchange(ws, frames.PING, {}, frames.new_req_id(frames.PING))
                missed = 0
            except BotRefused as error:
                log.warning("WeCom smart robot: ping answered with %s", error)
            except BotUnavailable:
                missed += 1
                if missed >= MISSED_PINGS:
                    await ws.close()  # ends the reader too
                    raise BotUnavailable(f"{missed} pings unanswered") from None

    async def _read(self, ws: ClientConnection) -> None:
        """Dispatch frames until the connection ends; _Replaced on a disconnected_event."""
        try:
            async for raw in ws:
                try:
                    frame = Frame.parse(raw)
                except ValueError:
                    log.warning("WeCom smart robot: a frame that is not JSON was ignored")
                    continue
                if frame.cmd == frames.MESSAGE_CALLBACK:
                    self._handle(self._on_message(ChatMessage.of(frame)))
                elif frame.cmd == frames.EVENT_CALLBACK:
                    if frame.event_type == frames.DISCONNECTED_EVENT:
                        raise _Replaced
                    if frame.event_type == frames.ENTER_CHAT_EVENT and self._on_enter is not None:
                        self._handle(self._on_enter(frame.req_id))
                elif not frame.cmd and frame.req_id in self._pending:
                    answer = self._pending[frame.req_id]
                    if not answer.done():
                        answer.set_result(frame)
        except websockets.ConnectionClosedOK:
            return

    def _handle(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a message's handling beside the reader, which keeps reading (acks included)."""
        handler = asyncio.create_task(work, name="wecom-bot-message")
        self._handlers.add(handler)
        handler.add_done_callback(self._handled)

    def _handled(self, task: asyncio.Task[None]) -> None:
        self._handlers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("WeCom smart robot: handling a message failed", exc_info=task.exception())
