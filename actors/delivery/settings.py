"""Settings of the delivery stage: the WeCom robot, status notices, the LLMSender's mailbox."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from actors.util.config import split_csv


class WeComSettings(BaseModel):
    """WeCom group robot delivery."""

    webhook_url: SecretStr | None = Field(None, description="Group robot webhook URL (holds the key).")
    msgtype: Literal["markdown", "text"] = Field("markdown", description="Message type used for content.")
    rate_per_window: int = Field(20, description="Messages allowed per window per robot (WeCom: 20/min).")
    window_s: float = Field(60, description="Length of the rate window in seconds.")
    timeout_s: float = Field(15, description="HTTP timeout of one send.")
    max_attempts: int = Field(8, description="Attempts per message on 45009 / -1 / network errors.")
    retry_base_s: float = Field(1.0, description="First backoff delay on busy answers.")
    attach_after_messages: int = Field(
        6, ge=0, description="A text needing more messages goes as summary + one .txt file message; 0 never attaches."
    )
    allowed_webhook_hosts: Annotated[list[str], NoDecode] = Field(
        default=["qyapi.weixin.qq.com"],
        description="Hosts a per-request webhook_url may point at (exact or *.suffix; comma-separated in env).",
    )
    allow_private_webhooks: bool = Field(False, description="Allow webhooks on loopback/private hosts; testing only.")

    @field_validator("allowed_webhook_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        return split_csv(value)


class NoticeSettings(BaseModel):
    """Status notices (【状态】) sent to the group, outside any video's block."""

    accepted: bool = Field(False, description="Announce each accepted link with its view page.")
    failed: bool = Field(True, description="Announce each failed task with the reason.")
    view_links: bool = Field(True, description="End the summary with a link to the task's view page.")


class SenderSettings(BaseModel):
    """LLMSender behaviour."""

    generation_concurrency: int = Field(4, description="Videos proofread/summarised at once.")
