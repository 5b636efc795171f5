"""Settings of the WeCom smart robot's long connection (off unless bot_id and secret are set)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from actors.util.config import split_csv

OFFICIAL_WS_URL = "wss://openws.work.weixin.qq.com"


class WeComBotSettings(BaseModel):
    """WeCom smart robot: members @-mention it with a link in any chat it is in; results come back there."""

    model_config = ConfigDict(hide_input_in_errors=True)

    bot_id: str | None = Field(
        None,
        description="The smart robot's Bot ID (admin console: the robot's page, API mode 'long connection'); "
        "with secret set, the LLMSender holds the robot's connection. Unset: off.",
    )
    secret: SecretStr | None = Field(None, description="The smart robot's Secret (same page as the Bot ID).")
    ws_url: str = Field(OFFICIAL_WS_URL, description="WebSocket URL of WeCom's long-connection server.")
    ca_file: Path | None = Field(
        None,
        description="Extra CA bundle (PEM) trusted for ws_url besides the system's: a private deployment or a "
        "test server. Unset: the system's CAs.",
    )
    allowed_chats: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Chat ids (group chatid, or a member's userid for a one-to-one chat) whose links are taken; "
        "empty: every chat the robot is in. Others get a refusal.",
    )
    allowed_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Member userids whose links are taken; empty: every member who can reach the robot.",
    )
    rate_per_window: int = Field(
        30, ge=1, description="Messages pushed to one chat within any window_s; WeCom allows 30 a minute."
    )
    window_s: float = Field(60, gt=0, description="Length of the per-chat rate window, in seconds.")
    heartbeat_s: float = Field(
        30, gt=0, description="Seconds between pings; two unanswered pings count as a lost connection."
    )
    ack_timeout_s: float = Field(10, gt=0, description="Seconds to wait for WeCom's answer to one frame.")
    reconnect_max_s: float = Field(
        60, gt=0, description="Longest wait between reconnection attempts (the wait doubles from 1 s up to it)."
    )
    replaced_backoff_s: float = Field(
        300,
        gt=0,
        description="Seconds to wait before reconnecting after WeCom said another instance subscribed the same "
        "robot (disconnected_event), doubling with each replacement in a row up to an hour; two instances would "
        "take the robot from each other.",
    )

    progress_s: float = Field(
        10,
        ge=0,
        description="Seconds between updates of the live progress in the robot's answer (a stream showing each "
        "accepted link's stage until its block goes out); 0: a finished answer at once, no progress.",
    )
    progress_max_s: float = Field(
        300,
        gt=0,
        description="Longest time an answer shows live progress; then it is finished with a note that the "
        "results will come to the chat.",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.bot_id) and self.secret is not None and bool(self.secret.get_secret_value())

    @field_validator("allowed_chats", "allowed_users", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_csv(value)
