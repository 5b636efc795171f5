"""`vidscribe doctor`'s check of the WeCom smart robot: configured, and WeCom's long-connection
server reachable over TLS with the configured CAs, and the connection of the running service
(its /healthz?details=true at VIDSCRIBE_PUBLIC_URL) when it answers. It never subscribes: a
subscribe would take the robot from the running service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import websockets

from actors.delivery.bot.connection import handshake
from actors.delivery.bot.settings import OFFICIAL_WS_URL, WeComBotSettings

Verdict = tuple[str, str, str]  # (ok | warn | FAIL, what was found, the fix)
Health = Callable[[str], Any]  # GET <public_url>/healthz?details=true -> its JSON (raises when it does not answer)


def service_health(public_url: str) -> Any:
    response = httpx.get(f"{public_url.rstrip('/')}/healthz", params={"details": "true"}, timeout=3)
    response.raise_for_status()
    return response.json()


BOT_FIX = (
    "in the WeCom admin console create a smart robot (智能机器人) in API mode with a long connection (长连接), "
    "then set both VIDSCRIBE_WECOM_BOT__BOT_ID and VIDSCRIBE_WECOM_BOT__SECRET from its page (README: smart robot)"
)


def ok(detail: str) -> Verdict:
    return ("ok", detail, "")


def warn(detail: str, fix: str) -> Verdict:
    return ("warn", detail, fix)


def fail(detail: str, fix: str) -> Verdict:
    return ("FAIL", detail, fix)


def wecom_bot_verdict(bot: WeComBotSettings, public_url: str, health: Health = service_health) -> Verdict:
    """Off, or the long-connection server answers a WebSocket handshake; then what the running
    service says of its connection."""
    if not bot.enabled:
        if bot.bot_id or bot.secret is not None:
            return fail("only one of the smart robot's Bot ID and Secret is set", BOT_FIX)
        return ok("smart robot off (members send links through the API, the page or the CLI)")
    if bot.ca_file is not None and not bot.ca_file.is_file():
        return fail(f"CA file {bot.ca_file} does not exist", "point VIDSCRIBE_WECOM_BOT__CA_FILE at a PEM file")
    try:
        asyncio.run(handshake(bot))
    except (OSError, TimeoutError, websockets.WebSocketException) as error:
        fix = "check the network to it (a proxy or firewall may block WebSockets)"
        if bot.ws_url != OFFICIAL_WS_URL:
            fix += f"; unset VIDSCRIBE_WECOM_BOT__WS_URL for WeCom's own ({OFFICIAL_WS_URL})"
        return fail(f"{bot.ws_url} not reachable: {type(error).__name__}: {error}", fix)
    shown = f"bot {bot.bot_id}: {bot.ws_url} reachable"
    if not bot.ws_url.startswith("wss://"):
        return warn(f"{shown} over plain ws://: the secret travels unencrypted", "use wss://")
    try:
        connection = health(public_url).get("wecom_bot") or {}
    except (httpx.HTTPError, ValueError, AttributeError):
        return ok(f"{shown}; the service at {public_url} did not answer, so its connection is not known")
    state, reason = connection.get("state", "off"), connection.get("reason", "")
    if state == "online":
        return ok(f"{shown}; the service's connection is online")
    return warn(
        f"{shown}; the service's connection is {state}: {reason}",
        "the service's log says more (WeCom smart robot ...); a refused subscribe means a wrong Bot ID or Secret",
    )
